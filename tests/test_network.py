"""The agent network: shapes, independence of the M copies, per-copy seeding, the
counterfactual gate correction, and the batched encoder against a per-copy reference."""

import pytest
import torch
from torch.nn import functional as F

from ssdlib.agents import AgentNetworks, LSTMState
from ssdlib.agents.network import CONV_CHANNELS, FC_SIZES, LSTM_SIZE
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


def test_output_shapes():
    m, e, k = 3, 5, 2
    net = AgentNetworks(A, k, [0, 1, 2])
    assert net.num_models == m
    for p in net.parameters():
        assert p.shape[0] == m
    assert net.conv_w.shape == (m, CONV_CHANNELS, 3, 3, 3)
    assert net.lstm_wx.shape == (m, FC_SIZES[1] + k * A, 4 * LSTM_SIZE)
    features = net.encode(images(m, e))
    assert features.shape == (m, e, FC_SIZES[1])
    state = net.initial_state(e)
    assert state.h.shape == state.c.shape == (m, e, LSTM_SIZE)
    assert not state.h.any() and not state.c.any()
    acts = other_actions(m, e, k)
    assert net.one_hot_actions(acts).shape == (m, e, k * A)
    assert net.one_hot_actions(acts).sum(-1).eq(k).all()
    gates = net.gates(features, acts, state)
    assert gates.shape == (m, e, 4 * LSTM_SIZE)
    assert net.counterfactual_gates(gates, acts, 1).shape == (m, e, A, 4 * LSTM_SIZE)
    logits, value, new_state = net.step(features, acts, state)
    assert logits.shape == (m, e, A)
    assert value.shape == (m, e)
    assert new_state.h.shape == new_state.c.shape == (m, e, LSTM_SIZE)
    # any number of games per copy, e.g. T*E flattened
    assert net.encode(images(m, 7 * e)).shape == (m, 7 * e, FC_SIZES[1])
    # no action inputs
    plain = AgentNetworks(A, 0, [4])
    assert plain.lstm_wx.shape == (1, FC_SIZES[1], 4 * LSTM_SIZE)
    logits, value, _ = plain.step(plain.encode(images(1, e)), None, plain.initial_state(e))
    assert logits.shape == (1, e, A) and value.shape == (1, e)


def test_single_copy_encode():
    """M = 1 (one seed, one agent): the grouped convolution is a plain one."""
    net = AgentNetworks(A, 0, [3])
    for e in (1, 4):
        assert net.encode(images(1, e)).shape == (1, e, FC_SIZES[1])


@pytest.mark.parametrize("m", [0, 1, 2])
def test_no_weight_sharing(m):
    """A loss on copy m's outputs reaches every parameter of copy m and nothing else."""
    net = AgentNetworks(A, 2, [10, 11, 12])
    e = 4
    feats = net.encode(images(3, 2 * e, seed=5)).view(3, 2, e, -1)
    acts = other_actions(3, e, 2)
    state = net.initial_state(e)
    out = []
    for t in range(2):  # two steps, so the recurrent weights see a non-zero h
        logits, value, state = net.step(feats[:, t], acts, state)
        out.append((logits, value))
    gen = torch.Generator().manual_seed(9)
    loss = sum((lg[m] * torch.randn(lg[m].shape, generator=gen)).sum() + 0.7 * v[m].sum() for lg, v in out)
    loss.backward()
    names = [name for name, _ in net.named_parameters()]
    assert set(names) == {"conv_w", "conv_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b", "lstm_wx", "lstm_wh",
                          "lstm_b", "pi_w", "v_w", "pi_b", "v_b"}
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        for other in range(3):
            if other == m:
                assert p.grad[other].abs().sum() > 0, f"{name}: copy {m} gets no gradient"
            else:
                assert torch.equal(p.grad[other], torch.zeros_like(p.grad[other])), f"{name}: copy {other} gets gradient"


def test_copy_weights_depend_only_on_own_seed():
    a = AgentNetworks(A, 2, [0, 1, 2])
    b = AgentNetworks(A, 2, [5, 1, 9])
    c = AgentNetworks(A, 2, [1])
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa[1], pb[1]), name
        assert torch.equal(pa[1], pc[0]), name
        if name not in ("pi_b", "v_b"):  # zero-initialised
            assert not torch.equal(pa[0], pb[0]), name
            assert not torch.equal(pa[0], pa[2]), name
    # and so the copy computes the same function
    x = images(3, 4)
    assert torch.equal(a.encode(x)[1], b.encode(x)[1])
    assert not torch.allclose(a.encode(x)[0], b.encode(x)[0])


@pytest.mark.parametrize("k", [1, 3])
def test_counterfactual_gates_match_recomputation(k):
    m, e = 2, 5
    net = AgentNetworks(A, k, [3, 4])
    features = net.encode(images(m, e))
    acts = other_actions(m, e, k)
    state = random_state(m, e)
    gates = net.gates(features, acts, state)
    for slot in range(k):
        cf = net.counterfactual_gates(gates, acts, slot)
        for action in range(A):
            replaced = acts.clone()
            replaced[:, :, slot] = action
            expected = net.gates(features, replaced, state)
            torch.testing.assert_close(cf[:, :, action], expected, atol=1e-5, rtol=1e-5)
        # the row of the taken action is the factual gates
        taken = cf.gather(2, acts[:, :, slot, None, None].expand(-1, -1, 1, cf.shape[-1])).squeeze(2)
        torch.testing.assert_close(taken, gates, atol=1e-5, rtol=1e-5)


def reference_forward(net: AgentNetworks, image: torch.Tensor, acts: torch.Tensor, state: LSTMState, copy: int):
    """Copy `copy` of the network evaluated alone with plain torch layers."""
    x = to_rgb(image[copy]).float() / 255.0  # [E, 15, 15, 3]
    x = x.permute(0, 3, 1, 2)  # [E, 3, 15, 15]
    x = F.relu(F.conv2d(x, net.conv_w[copy], net.conv_b[copy]))  # [E, 6, 13, 13]
    x = x.flatten(1)
    x = torch.tanh(F.linear(x, net.fc1_w[copy].T, net.fc1_b[copy]))
    features = torch.tanh(F.linear(x, net.fc2_w[copy].T, net.fc2_b[copy]))
    lstm_in = torch.cat([features, F.one_hot(acts[copy], A).flatten(-2).float()], -1)
    cell = torch.nn.LSTMCell(lstm_in.shape[-1], LSTM_SIZE)
    with torch.no_grad():  # torch's LSTMCell gate order is (input, forget, cell, output) too
        cell.weight_ih.copy_(net.lstm_wx[copy].T)
        cell.weight_hh.copy_(net.lstm_wh[copy].T)
        cell.bias_ih.copy_(net.lstm_b[copy])
        cell.bias_hh.zero_()
    h, c = cell(lstm_in, (state.h[copy], state.c[copy]))
    logits = F.linear(h, net.pi_w[copy].T, net.pi_b[copy])
    value = F.linear(h, net.v_w[copy].T, net.v_b[copy]).squeeze(-1)
    return features, logits, value, h, c


def test_batched_forward_equals_per_copy_reference():
    m, e, k = 3, 6, 2
    net = AgentNetworks(A, k, [7, 8, 9])
    with torch.no_grad():  # non-zero output biases, so they are checked too
        net.pi_b.normal_()
        net.v_b.normal_()
    image = images(m, e, seed=11)
    acts = other_actions(m, e, k)
    state = random_state(m, e)
    with torch.no_grad():
        features = net.encode(image)
        logits, value, new_state = net.step(features, acts, state)
        for copy in range(m):
            ref_f, ref_logits, ref_value, ref_h, ref_c = reference_forward(net, image, acts, state, copy)
            torch.testing.assert_close(features[copy], ref_f, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(logits[copy], ref_logits, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(value[copy], ref_value, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(new_state.h[copy], ref_h, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(new_state.c[copy], ref_c, atol=1e-5, rtol=1e-5)


def test_palette_input_is_rgb_over_255():
    net = AgentNetworks(A, 0, [0])
    assert torch.equal(net.palette, PALETTE.float() / 255.0)
    assert net.palette.min() >= 0 and net.palette.max() <= 1
    torch.testing.assert_close(net.palette[WALL], torch.tensor([180.0, 180.0, 180.0]) / 255.0)
    # the encoder sees the scaled colours: a uniform wall view equals a hand-built one
    wall = torch.full((1, 1, VIEW_SIZE, VIEW_SIZE), WALL, dtype=torch.uint8)
    x = torch.full((1, 3, VIEW_SIZE, VIEW_SIZE), 180.0 / 255.0)
    x = F.relu(F.conv2d(x, net.conv_w[0], net.conv_b[0])).flatten(1)
    x = torch.tanh(torch.tanh(x @ net.fc1_w[0] + net.fc1_b[0]) @ net.fc2_w[0] + net.fc2_b[0])
    with torch.no_grad():
        torch.testing.assert_close(net.encode(wall)[0], x.detach(), atol=1e-5, rtol=1e-5)
        unscaled = F.relu(F.conv2d(x.new_full((1, 3, VIEW_SIZE, VIEW_SIZE), 180.0), net.conv_w[0], net.conv_b[0]))
        unscaled = torch.tanh(torch.tanh(unscaled.flatten(1) @ net.fc1_w[0] + net.fc1_b[0]) @ net.fc2_w[0] + net.fc2_b[0])
        assert not torch.allclose(net.encode(wall)[0], unscaled, atol=1e-3)
