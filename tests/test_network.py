"""The agent network: shapes, independence of the M copies, per-copy seeding, the
counterfactual gate correction, and the batched encoder against a per-copy reference."""

import pytest
import torch
from torch.nn import functional as F

from ssdlib.agents import AgentNetworks, LSTMState
from ssdlib.agents.blocks import CONV_CHANNELS, FC_SIZES, LSTM_SIZE
from ssdlib.envs import PALETTE, to_rgb
from ssdlib.envs.geometry import VIEW_SIZE
from ssdlib.envs.palette import WALL

A = 8  # actions


def images(m: int, e: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, len(PALETTE), (m, e, VIEW_SIZE, VIEW_SIZE), generator=gen, dtype=torch.uint8)


def other_actions(m: int, e: int, k: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, A, (m, e, k), generator=gen)


def random_state(m: int, e: int, seed: int = 2) -> LSTMState:
    gen = torch.Generator().manual_seed(seed)
    return LSTMState(torch.rand(m, e, LSTM_SIZE, generator=gen) - 0.5, torch.rand(m, e, LSTM_SIZE, generator=gen) - 0.5)


def make_net(k: int, seeds: list[int]) -> AgentNetworks:
    """Networks whose LSTM sees k other agents' actions (N = k + 1 agents; k = 0: no action input)."""
    return AgentNetworks(A, k + 1, k > 0, False, seeds)


def encode(net: AgentNetworks, image: torch.Tensor) -> torch.Tensor:
    """Palette images [M, E, 15, 15] -> FC features [M, E, 32]: the conv, then the core's FC layers."""
    return net.core.features(net.conv(image))


def gates_of(net: AgentNetworks, features: torch.Tensor, acts: torch.Tensor | None, state: LSTMState) -> torch.Tensor:
    return net.core.gates(features, net.policy_inputs(acts), state)


def materialised(net: AgentNetworks, gates: torch.Tensor, acts: torch.Tensor, slot: int) -> torch.Tensor:
    """The counterfactual gates [M, E, A, 4H] written out whole: (g − W[a]) + W[ã]."""
    rows = net.core.lstm_wx[:, net.core.block_rows("others", slot)]
    taken = rows.gather(1, acts[:, :, slot, None].expand(-1, -1, rows.shape[-1]))
    return gates[:, :, None] - taken[:, :, None] + rows[:, None]


def test_output_shapes():
    m, e, k = 3, 5, 2
    net = make_net(k, [0, 1, 2])
    assert net.num_models == m
    assert net.others_inputs and net.core.blocks == {"others": k}
    for p in net.parameters():
        assert p.shape[0] == m
    assert net.conv.conv_w.shape == (m, CONV_CHANNELS, 3, 3, 3)
    assert net.core.lstm_wx.shape == (m, FC_SIZES[1] + k * A, 4 * LSTM_SIZE)
    features = encode(net, images(m, e))
    assert features.shape == (m, e, FC_SIZES[1])
    memory = net.initial_memory(e)
    assert memory.moa is None
    state = memory.policy
    assert state.h.shape == state.c.shape == (m, e, LSTM_SIZE)
    assert not state.h.any() and not state.c.any()
    acts = other_actions(m, e, k)
    # the action input is the one-hot of each slot's action, k * A columns with k ones
    one_hot = F.one_hot(acts, A).flatten(-2).float()
    assert one_hot.shape == (m, e, k * A)
    assert one_hot.sum(-1).eq(k).all()
    gates = gates_of(net, features, acts, state)
    assert gates.shape == (m, e, 4 * LSTM_SIZE)
    with torch.no_grad():
        x = torch.cat([features, one_hot], -1)
        expected = net.core.lstm_b[:, None] + x @ net.core.lstm_wx + state.h @ net.core.lstm_wh
        torch.testing.assert_close(gates, expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        assert net.core.counterfactual_h(gates, acts, "others", 1, state.c).shape == (m, e, A, LSTM_SIZE)
    logits, value, new_state = net.policy_step(features, acts, state)
    assert logits.shape == (m, e, A)
    assert value.shape == (m, e)
    assert new_state.h.shape == new_state.c.shape == (m, e, LSTM_SIZE)
    # any number of games per copy, e.g. T*E flattened
    assert encode(net, images(m, 7 * e)).shape == (m, 7 * e, FC_SIZES[1])
    # no action inputs
    plain = make_net(0, [4])
    assert not plain.others_inputs and plain.policy_inputs(None) == {}
    assert plain.core.lstm_wx.shape == (1, FC_SIZES[1], 4 * LSTM_SIZE)
    logits, value, _ = plain.policy_step(encode(plain, images(1, e)), None, plain.initial_memory(e).policy)
    assert logits.shape == (1, e, A) and value.shape == (1, e)


def test_single_copy_encode():
    """M = 1 (one seed, one agent): the grouped convolution is a plain one."""
    net = make_net(0, [3])
    for e in (1, 4):
        assert encode(net, images(1, e)).shape == (1, e, FC_SIZES[1])


@pytest.mark.parametrize("m", [0, 1, 2])
def test_no_weight_sharing(m):
    """A loss on copy m's outputs reaches every parameter of copy m and nothing else."""
    net = make_net(2, [10, 11, 12])
    e = 4
    feats = encode(net, images(3, 2 * e, seed=5)).view(3, 2, e, -1)
    acts = other_actions(3, e, 2)
    state = net.initial_memory(e).policy
    out = []
    for t in range(2):  # two steps, so the recurrent weights see a non-zero h
        logits, value, state = net.policy_step(feats[:, t], acts, state)
        out.append((logits, value))
    gen = torch.Generator().manual_seed(9)
    loss = sum((lg[m] * torch.randn(lg[m].shape, generator=gen)).sum() + 0.7 * v[m].sum() for lg, v in out)
    loss.backward()
    names = [name for name, _ in net.named_parameters()]
    assert set(names) == {"conv.conv_w", "conv.conv_b", "core.fc1_w", "core.fc1_b", "core.fc2_w", "core.fc2_b",
                          "core.lstm_wx", "core.lstm_wh", "core.lstm_b", "head.pi_w", "head.v_w", "head.pi_b",
                          "head.v_b"}
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        for other in range(3):
            if other == m:
                assert p.grad[other].abs().sum() > 0, f"{name}: copy {m} gets no gradient"
            else:
                assert torch.equal(p.grad[other], torch.zeros_like(p.grad[other])), f"{name}: copy {other} gets gradient"


def test_copy_weights_depend_only_on_own_seed():
    a = make_net(2, [0, 1, 2])
    b = make_net(2, [5, 1, 9])
    c = make_net(2, [1])
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa[1], pb[1]), name
        assert torch.equal(pa[1], pc[0]), name
        if name not in ("head.pi_b", "head.v_b"):  # zero-initialised
            assert not torch.equal(pa[0], pb[0]), name
            assert not torch.equal(pa[0], pa[2]), name
    # and so the copy computes the same function
    x = images(3, 4)
    assert torch.equal(encode(a, x)[1], encode(b, x)[1])
    assert not torch.allclose(encode(a, x)[0], encode(b, x)[0])


def factual_step(k: int, m: int, e: int):
    """m copies (seeds 3, 4, ...) seeing k others, with FC features, the others' actions, an
    LSTM state and the gates of one step."""
    net = make_net(k, list(range(3, 3 + m)))
    features = encode(net, images(m, e))
    acts = other_actions(m, e, k)
    state = random_state(m, e)
    return net, features, acts, state, gates_of(net, features, acts, state)


@pytest.mark.parametrize("k", [1, 3])
def test_counterfactual_h_matches_recomputation(k):
    """The LSTM output under every action in a slot equals that of gates recomputed with that
    action (float tolerance), equals bit for bit the cell of the materialised row-swapped
    gates, and its row of the taken action is the factual output."""
    net, features, acts, state, gates = factual_step(k, 2, 5)
    factual = net.core.cell(gates, state.c)
    for slot in range(k):
        with torch.no_grad():
            cf = net.core.counterfactual_h(gates, acts, "others", slot, state.c)
            whole = net.core.cell(materialised(net, gates, acts, slot), state.c[:, :, None])
        assert torch.equal(cf, whole.h)
        for action in range(A):
            replaced = acts.clone()
            replaced[:, :, slot] = action
            expected = net.core.cell(gates_of(net, features, replaced, state), state.c)
            torch.testing.assert_close(cf[:, :, action], expected.h, atol=1e-6, rtol=1e-5)
        taken = cf.gather(2, acts[:, :, slot, None, None].expand(-1, -1, 1, LSTM_SIZE)).squeeze(2)
        torch.testing.assert_close(taken, factual.h, atol=1e-6, rtol=1e-5)


def reference_forward(net: AgentNetworks, image: torch.Tensor, acts: torch.Tensor, state: LSTMState, copy: int):
    """Copy `copy` of the network evaluated alone with plain torch layers."""
    x = to_rgb(image[copy]).float() / 255.0  # [E, 15, 15, 3]
    x = x.permute(0, 3, 1, 2)  # [E, 3, 15, 15]
    x = F.relu(F.conv2d(x, net.conv.conv_w[copy], net.conv.conv_b[copy]))  # [E, 6, 13, 13]
    x = x.flatten(1)
    x = torch.tanh(F.linear(x, net.core.fc1_w[copy].T, net.core.fc1_b[copy]))
    features = torch.tanh(F.linear(x, net.core.fc2_w[copy].T, net.core.fc2_b[copy]))
    lstm_in = torch.cat([features, F.one_hot(acts[copy], A).flatten(-2).float()], -1)
    cell = torch.nn.LSTMCell(lstm_in.shape[-1], LSTM_SIZE)
    with torch.no_grad():  # torch's LSTMCell gate order is (input, forget, cell, output) too
        cell.weight_ih.copy_(net.core.lstm_wx[copy].T)
        cell.weight_hh.copy_(net.core.lstm_wh[copy].T)
        cell.bias_ih.copy_(net.core.lstm_b[copy])
        cell.bias_hh.zero_()
    h, c = cell(lstm_in, (state.h[copy], state.c[copy]))
    logits = F.linear(h, net.head.pi_w[copy].T, net.head.pi_b[copy])
    value = F.linear(h, net.head.v_w[copy].T, net.head.v_b[copy]).squeeze(-1)
    return features, logits, value, h, c


def test_batched_forward_equals_per_copy_reference():
    m, e, k = 3, 6, 2
    net = make_net(k, [7, 8, 9])
    with torch.no_grad():  # non-zero output biases, so they are checked too
        net.head.pi_b.normal_()
        net.head.v_b.normal_()
    image = images(m, e, seed=11)
    acts = other_actions(m, e, k)
    state = random_state(m, e)
    with torch.no_grad():
        features = encode(net, image)
        logits, value, new_state = net.policy_step(features, acts, state)
        for copy in range(m):
            ref_f, ref_logits, ref_value, ref_h, ref_c = reference_forward(net, image, acts, state, copy)
            torch.testing.assert_close(features[copy], ref_f, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(logits[copy], ref_logits, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(value[copy], ref_value, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(new_state.h[copy], ref_h, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(new_state.c[copy], ref_c, atol=1e-5, rtol=1e-5)


def test_palette_input_is_rgb_over_255():
    net = make_net(0, [0])
    palette = net.conv.palette
    assert torch.equal(palette, PALETTE.float() / 255.0)
    assert palette.min() >= 0 and palette.max() <= 1
    torch.testing.assert_close(palette[WALL], torch.tensor([180.0, 180.0, 180.0]) / 255.0)
    # the encoder sees the scaled colours: a uniform wall view equals a hand-built one
    wall = torch.full((1, 1, VIEW_SIZE, VIEW_SIZE), WALL, dtype=torch.uint8)
    x = torch.full((1, 3, VIEW_SIZE, VIEW_SIZE), 180.0 / 255.0)
    conv, core = net.conv, net.core
    x = F.relu(F.conv2d(x, conv.conv_w[0], conv.conv_b[0])).flatten(1)
    x = torch.tanh(torch.tanh(x @ core.fc1_w[0] + core.fc1_b[0]) @ core.fc2_w[0] + core.fc2_b[0])
    with torch.no_grad():
        torch.testing.assert_close(encode(net, wall)[0], x.detach(), atol=1e-5, rtol=1e-5)
        unscaled = F.relu(F.conv2d(x.new_full((1, 3, VIEW_SIZE, VIEW_SIZE), 180.0), conv.conv_w[0], conv.conv_b[0]))
        unscaled = torch.tanh(torch.tanh(unscaled.flatten(1) @ core.fc1_w[0] + core.fc1_b[0]) @ core.fc2_w[0] + core.fc2_b[0])
        assert not torch.allclose(encode(net, wall)[0], unscaled, atol=1e-3)
