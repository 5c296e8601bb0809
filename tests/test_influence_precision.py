"""Precision of the influence reward.

The influence is a divergence between counterfactual distributions that are nearly
identical, i.e. a difference of tiny numbers: for two softmax distributions whose logits
differ by ε δ, KL[p ‖ q] = ½ ε² Var_p(δ) + O(ε³) and JSD[p, q] = ⅛ ε² Var_p(δ) + O(ε³). With
ε = 1e-4 that is ~1e-9, far below float32's rounding of a log-probability (~1e-7), so the
trainer takes log-softmax and divergences in float64. These tests pin that down against
exact values (mpmath, 50 digits), show that the float32 path would be badly wrong, and check
the float64 influence of a real Trainer against a float64 brute-force recomputation.
"""

import copy

import mpmath
import pytest
import torch

from ssdlib.agents import LSTMState, Memory
from ssdlib.agents.blocks import FC_SIZES
from ssdlib.influence import causal_influence_reward, js_divergence, kl_divergence
from ssdlib.training.conditions import Preset, config_from_dict, load_config
from ssdlib.training.influence_sources import CentralisedInfluence
from ssdlib.training.trainer import Trainer

mpmath.mp.dps = 50
EPS = 1e-4


# ---------------------------------------------------------------------- exact references
def mp_probs(logits: torch.Tensor) -> list:
    """Softmax of the exact (binary) values of `logits` (1-D), in 50-digit arithmetic."""
    xs = [mpmath.mpf(float(v)) for v in logits]
    top = max(xs)
    weights = [mpmath.exp(v - top) for v in xs]
    total = mpmath.fsum(weights)
    return [w / total for w in weights]


def mp_kl(p: list, q: list):
    return mpmath.fsum(pi * mpmath.log(pi / qi) for pi, qi in zip(p, q))


def mp_jsd(p: list, q: list):
    m = [(pi + qi) / 2 for pi, qi in zip(p, q)]
    return (mp_kl(p, m) + mp_kl(q, m)) / 2


def relative_error(value: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    return ((value.double() - exact) / exact).abs()


def assert_float32_wrong(value: torch.Tensor, exact: torch.Tensor) -> None:
    """Off by more than 10% on at least 3/4 of the entries."""
    error = relative_error(value, exact)
    assert (error > 0.1).double().mean() >= 0.75


def perturbed_pairs(rows: int = 32, actions: int = 9, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 logits z and z + 1e-4 δ, [rows, actions] each (z, δ standard normal)."""
    gen = torch.Generator().manual_seed(seed)
    z = 2.0 * torch.randn(rows, actions, generator=gen, dtype=torch.float64)
    delta = torch.randn(rows, actions, generator=gen, dtype=torch.float64)
    return z.float(), (z + EPS * delta).float()


# ---------------------------------------------------------------------- divergences of near-identical policies
def test_near_identical_policies_float64_exact_float32_wrong():
    a, b = perturbed_pairs()
    exact_kl = torch.tensor([float(mp_kl(mp_probs(x), mp_probs(y))) for x, y in zip(a, b)], dtype=torch.float64)
    exact_js = torch.tensor([float(mp_jsd(mp_probs(x), mp_probs(y))) for x, y in zip(a, b)], dtype=torch.float64)
    # the closed form of a small perturbation (δ: the logit difference as stored in float32)
    delta = b.double() - a.double()
    p = torch.softmax(a.double(), -1)
    variance = (p * delta**2).sum(-1) - (p * delta).sum(-1) ** 2
    assert relative_error(variance / 2, exact_kl).max() < 1e-3
    assert relative_error(variance / 8, exact_js).max() < 1e-3
    assert exact_kl.max() < 1e-7  # the quantities at stake are tiny

    # float64 log-softmax of the float32 logits (what the trainer does): within 1% (in fact ~1e-6)
    p64, q64 = torch.log_softmax(a.double(), -1), torch.log_softmax(b.double(), -1)
    assert relative_error(kl_divergence(p64, q64), exact_kl).max() < 0.01
    assert relative_error(js_divergence(p64, q64), exact_js).max() < 0.01

    # contrast: the same in float32 is off by far more than 1% (its rounding of ~1e-7 per
    # log-probability swamps a divergence of ~1e-9): why the trainer uses float64
    p32, q32 = torch.log_softmax(a, -1), torch.log_softmax(b, -1)
    # (the JSD, taken from the log-ratio with expm1/log1p, keeps its digits even in float32)
    assert_float32_wrong(kl_divergence(p32, q32), exact_kl)


@pytest.mark.parametrize("divergence", ["kl", "jsd"])
def test_causal_influence_of_near_identical_counterfactuals(divergence):
    """The influence reward through `causal_influence_reward`: an influencee whose policy
    moves by 1e-4 in the logits with the influencer's action. float64 log-softmax of the
    float32 logits gives the exact value within 1%; float32 throughout does not."""
    gen = torch.Generator().manual_seed(1)
    batch, a_k, a_j = 16, 4, 9
    z = 2.0 * torch.randn(batch, 1, a_j, generator=gen, dtype=torch.float64)
    cond_logits = (z + EPS * torch.randn(batch, a_k, a_j, generator=gen, dtype=torch.float64)).float()
    influencer_logits = torch.randn(batch, a_k, generator=gen).float()
    taken = torch.randint(0, a_k, (batch,), generator=gen)

    exact = []
    for i in range(batch):
        rows = [mp_probs(cond_logits[i, x]) for x in range(a_k)]
        pi = mp_probs(influencer_logits[i])
        marginal = [mpmath.fsum(pi[x] * rows[x][y] for x in range(a_k)) for y in range(a_j)]
        cond = rows[int(taken[i])]
        exact.append(float(mp_kl(cond, marginal) if divergence == "kl" else mp_jsd(cond, marginal)))
    exact = torch.tensor(exact, dtype=torch.float64)
    assert exact.max() < 1e-7

    c64 = causal_influence_reward(torch.log_softmax(cond_logits.double(), -1),
                                  torch.log_softmax(influencer_logits.double(), -1), taken, divergence=divergence)
    assert c64.dtype == torch.float64
    assert relative_error(c64, exact).max() < 0.01
    c32 = causal_influence_reward(torch.log_softmax(cond_logits, -1), torch.log_softmax(influencer_logits, -1),
                                  taken, divergence=divergence)
    if divergence == "kl":  # the JSD's log-ratio form keeps its digits even in float32
        assert_float32_wrong(c32, exact)


# ---------------------------------------------------------------------- a real trainer (centralised influence)
def influence_trainer(divergence: str = "jsd", seeds=(0,), games: int = 2, rollout_length: int = 4) -> Trainer:
    """cleanup_influence (5 agents, agent 0 the influencer, influencee reward on), smoke-sized."""
    data = load_config("cleanup_influence").to_dict()
    data["reward"]["divergence"] = divergence
    data["reward"]["curriculum_steps"] = 0.0
    data["optim"]["rollout_length"] = rollout_length
    preset = Preset("t", total_steps=10_000, num_envs=games, horizon=20, checkpoint_seconds=0.0)
    tr = Trainer(config_from_dict(data), preset, list(seeds), device="cpu")
    assert isinstance(tr.influence_source, CentralisedInfluence) and tr.K == 1
    with torch.no_grad():  # sharper policies, stronger action inputs than at init
        tr.net.head.pi_w.mul_(300.0)
        tr.net.core.lstm_wx[:, FC_SIZES[1]:].mul_(15.0)
    for _ in range(3):
        tr.play()
    return tr


def ignore_influencers(tr: Trainer) -> None:
    """Every influencee's policy LSTM ignores the influencers' action slots."""
    with torch.no_grad():
        for m in range(tr.layout.models):
            if m % tr.N >= tr.K:
                for k in range(tr.K):
                    tr.net.core.lstm_wx[m, tr.net.core.block_rows("others", k)] = 0.0


@pytest.mark.parametrize("divergence", ["jsd", "kl"])
def test_ignored_influencer_gives_zero_influence(divergence):
    tr = influence_trainer(divergence, seeds=(0, 1))
    obs, memory = tr.state.obs, tr.state.memory
    before = tr.act(obs, memory).influence
    assert (before.pairs > 1e-3).all()
    assert (before.reward > 1e-3).all()  # influencer and influencees (influencee reward) alike
    ignore_influencers(tr)
    out = tr.act(obs, memory)
    # the influencees' LSTM outputs are now the same for every influencer action; their
    # float32 logits still differ by a few ulps (~3e-7, from the row each counterfactual
    # takes in the batched head matmul)...
    step = out.transition
    net = tr.net
    features = net.core.features(net.conv(tr.layout.to_models(obs.image)))
    gates = net.core.gates(features, net.policy_inputs(step.others), memory.policy)
    cf = tr.influence_source.counterfactual_log_policies(gates, memory.policy.c, step.others)
    assert (cf - cf[..., :1, :]).abs().max() < 1e-6
    # ...so the influence vanishes up to that and the float64 rounding of the marginal: ~1e-15,
    # against 1e-3 to 1e-1 before
    for x in out.influence:
        assert x.dtype == torch.float64
        assert x.abs().max() <= 1e-13


@pytest.mark.parametrize("divergence", ["jsd", "kl"])
def test_ignored_influencer_gives_exactly_zero_influence(divergence):
    tr = influence_trainer(divergence, seeds=(0, 1))
    ignore_influencers(tr)
    out = tr.act(tr.state.obs, tr.state.memory)
    assert torch.equal(out.influence.reward, torch.zeros_like(out.influence.reward))
    assert torch.equal(out.influence.pairs, torch.zeros_like(out.influence.pairs))


def divergence_of(p: torch.Tensor, q: torch.Tensor, name: str) -> torch.Tensor:
    if name == "kl":
        return (p * (p.log() - q.log())).sum()
    m = 0.5 * (p + q)
    return 0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum()


@torch.no_grad()
def brute_force_centralised(tr: Trainer, net, obs, memory: Memory, step, divergence: str) -> torch.Tensor:
    """pairs [B, K, J] float64: every influencee's policy rerun (`policy_step`, from the
    one-hot inputs) once per counterfactual action of influencer k, softmaxes in float64."""
    lay, n, k_count = tr.layout, tr.N, tr.K
    features = net.core.features(net.conv(lay.to_models(obs.image)))
    own_logits, _, _ = net.policy_step(features, step.others, memory.policy)
    own = lay.to_games(torch.softmax(own_logits.double(), -1))  # [B, N, A]
    influencee = (torch.arange(lay.models) % n >= k_count)[:, None]
    actions = lay.to_games(step.actions)
    pairs = torch.zeros(actions.shape[0], k_count, n - k_count, dtype=torch.float64)
    for k in range(k_count):
        cf = []
        for a in range(net.num_actions):
            others = step.others.clone()
            others[:, :, k] = torch.where(influencee, a, others[:, :, k])
            logits, _, _ = net.policy_step(features, others, memory.policy)
            cf.append(lay.to_games(torch.softmax(logits.double(), -1)))
        cf = torch.stack(cf, 2)  # [B, N, ã, A]
        for b in range(actions.shape[0]):
            for j in range(k_count, n):
                cond = cf[b, j, int(actions[b, k])]
                marginal = sum(own[b, k, a] * cf[b, j, a] for a in range(net.num_actions))
                pairs[b, k, j - k_count] = divergence_of(cond, marginal, divergence)
    return pairs


def double_memory(memory: Memory) -> Memory:
    return Memory(LSTMState(*(x.double() for x in memory.policy)), None)


@pytest.mark.parametrize("divergence", ["jsd", "kl"])
def test_recorded_influence_is_float64_and_matches_brute_force(divergence):
    """With float64 networks, every step of a rollout: the influence `act` computes (and the
    episode statistics accumulate) is float64 and equals the brute force to 1e-12."""
    tr = influence_trainer(divergence, seeds=(0, 2), rollout_length=3)
    tr.state.stats.start()
    tr.net.double()
    tr.state.memory = double_memory(tr.state.memory)
    expected_sum = torch.zeros(tr.S * tr.E, tr.N, dtype=torch.float64)
    real_act = tr.act
    checked = []

    def act(obs, memory, with_influence=True, keep_graph=False):
        out = real_act(obs, memory, with_influence, keep_graph)
        if with_influence:
            pairs = brute_force_centralised(tr, tr.net, obs, memory, out.transition, divergence)
            influence = out.influence
            assert influence.reward.dtype == influence.pairs.dtype == torch.float64
            torch.testing.assert_close(influence.pairs, pairs, rtol=1e-10, atol=1e-15)
            expected = torch.cat([pairs.sum(2), pairs.sum(1)], 1)  # influencer: given; influencees: received
            torch.testing.assert_close(influence.reward, expected, rtol=1e-10, atol=1e-15)
            assert (pairs > 1e-4).all()
            expected_sum.add_(expected)
            checked.append(True)
        return out

    tr.act = act
    tr.collect()
    assert len(checked) == 3
    assert tr.state.stats.influence.dtype == torch.float64
    torch.testing.assert_close(tr.state.stats.influence, expected_sum, rtol=1e-10, atol=1e-15)


def test_float32_network_influence_close_to_float64_brute_force():
    """As the trainer runs (float32 networks): the recorded influence is float64, and equals
    the float64 rerun of the same weights up to the float32 rounding of the network."""
    tr = influence_trainer("jsd", seeds=(3,))
    obs, memory = tr.state.obs, tr.state.memory
    out = tr.act(obs, memory)
    assert out.influence.reward.dtype == torch.float64
    net64 = copy.deepcopy(tr.net).double()
    pairs = brute_force_centralised(tr, net64, obs, double_memory(memory), out.transition, "jsd")
    torch.testing.assert_close(out.influence.pairs, pairs, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("divergence", ["jsd", "kl"])
def test_trainer_influence_of_near_identical_counterfactuals(divergence):
    """The influencees barely listen (their influencer-slot input weights scaled by 1e-3), so
    the counterfactual policies differ by ~1e-4 in the logits and the influence is ~1e-9. The
    trainer (float32 networks, float64 log-softmax and divergence) still gets it within 1% of
    the float64 rerun: float32 rounding of the logits only enters at second order, since the
    log-softmax renormalises them. A float32 log-softmax would not: its row-wise rounding of
    ~1e-7 enters the divergence at first order."""
    tr = influence_trainer(divergence, seeds=(0, 1))
    with torch.no_grad():
        for m in range(tr.layout.models):
            if m % tr.N >= tr.K:
                tr.net.core.lstm_wx[m, tr.net.core.block_rows("others", 0)] *= 1e-3
    obs, memory = tr.state.obs, tr.state.memory
    out = tr.act(obs, memory)
    net64 = copy.deepcopy(tr.net).double()
    pairs = brute_force_centralised(tr, net64, obs, double_memory(memory), out.transition, divergence)
    assert pairs.max() < 1e-6 and pairs.min() > 0
    assert relative_error(out.influence.pairs, pairs).max() < 0.01
    # contrast: the counterfactual logits of the same float32 network, log-softmax in float32
    lay = tr.layout
    features = tr.net.core.features(tr.net.conv(lay.to_models(obs.image)))
    with torch.no_grad():
        logits, influencer = [], None
        for a in range(tr.net.num_actions):
            others = out.transition.others.clone()
            others[:, :, 0] = torch.where((torch.arange(lay.models) % tr.N >= tr.K)[:, None], a, others[:, :, 0])
            step_logits, _, _ = tr.net.policy_step(features, others, memory.policy)
            logits.append(lay.to_games(step_logits))
        cf32 = torch.log_softmax(torch.stack(logits, 2)[:, tr.K:], -1)  # [B, J, ã, A] float32
        influencer = torch.log_softmax(lay.to_games(tr.net.policy_step(features, out.transition.others,
                                                                       memory.policy)[0])[:, 0], -1)
        taken = lay.to_games(out.transition.actions)[:, 0]
        c32 = causal_influence_reward(cf32, influencer[:, None], taken[:, None].expand(-1, cf32.shape[1]),
                                      divergence=divergence)
    if divergence == "kl":  # the JSD's log-ratio form keeps its digits even in float32
        assert_float32_wrong(c32, pairs[:, 0])
