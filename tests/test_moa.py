"""The model of other agents (MOA, paper section 6) and the influence reward computed from it.

Each agent k has its own MOA p̂_k: an FC + LSTM on its conv features whose input holds every
agent's action of step t (own first), and a head predicting the others' actions at t + 1.
Its influence reward for the action a^k_t is

    c^k_t = clip(Σ_{j in view at t} KL[p̂_k(a^j_{t+1} | a^k_t) ‖ Σ_ã p̂_k(a^j_{t+1} | ã) π^k(ã | s^k_t)], ±10),

credited to step t. These tests recompute it by brute force (the MOA rerun once per
counterfactual own action), check the visibility mask, the clip, the timing of the MOA's
cross-entropy and its masks, that an MOA learns a scripted agent (and the reward then
reaches its closed form), that no agent reads another agent's network, and that an MOA run
resumes bit for bit.
"""

import copy
import dataclasses
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from ssdlib.agents import AgentNetworks, LSTMState, Memory
from ssdlib.agents.blocks import FC_SIZES
from ssdlib.influence import curriculum_weight
from ssdlib.train import train
from ssdlib.training.conditions import Preset, config_from_dict, load_config
from ssdlib.training.conditions.presets import PRESETS
from ssdlib.training.influence_sources import MOA_REWARD_CLIP, MOAInfluence, StepInputs
from ssdlib.training.layout import Layout
from ssdlib.training.losses import moa_loss
from ssdlib.training.state import load_checkpoint
from ssdlib.training.trainer import Trainer


# ---------------------------------------------------------------------- helpers
def moa_config(name: str = "cleanup_moa_influence", num_agents: int = 3, divergence: str | None = None, **optim):
    data = load_config(name).to_dict()
    data["num_agents"] = num_agents
    if divergence is not None:
        data["reward"]["divergence"] = divergence
    data["optim"].update({"rollout_length": 8, **optim})
    return config_from_dict(data)


def make_trainer(config, seeds=(0, 4), games: int = 2, horizon: int = 20) -> Trainer:
    preset = Preset("t", total_steps=10_000, num_envs=games, horizon=horizon, checkpoint_seconds=0.0)
    return Trainer(config, preset, list(seeds), device="cpu")


def sharpen(net: AgentNetworks) -> None:
    """Random non-trivial weights: MOA predictions that depend strongly on the action inputs
    and non-uniform policies, so the influence is far from 0 (at init it is ~1e-4)."""
    with torch.no_grad():
        net.moa_head.w.mul_(20.0)
        net.moa_core.lstm_wx[:, FC_SIZES[1]:].mul_(5.0)
        net.head.pi_w.mul_(100.0)


def to_double(trainer: Trainer) -> None:
    """The trainer's networks and recurrent memory in float64 (so that a float64 brute force
    can be compared to ~1e-12: nothing is rounded to float32 on either side)."""
    trainer.net.double()
    m = trainer.state.memory
    trainer.state.memory = Memory(LSTMState(m.policy.h.double(), m.policy.c.double()),
                                  LSTMState(m.moa.h.double(), m.moa.c.double()))


def advance(trainer: Trainer, steps: int) -> None:
    """Play a few steps so the recurrent states are not zero."""
    for _ in range(steps):
        trainer.play()


def divergence_of(p: torch.Tensor, q: torch.Tensor, name: str) -> torch.Tensor:
    """D[p ‖ q] from probabilities (float64, all entries > 0)."""
    if name == "kl":
        return (p * (p.log() - q.log())).sum()
    m = 0.5 * (p + q)
    return 0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum()


@torch.no_grad()
def brute_force_moa_influence(trainer: Trainer, net: AgentNetworks, obs, memory: Memory, all_actions: torch.Tensor,
                              visible: torch.Tensor, divergence: str) -> torch.Tensor:
    """Pairs [M, E, N-1], float64: every agent's MOA rerun from scratch (gates from the
    one-hot input, LSTM cell, head) once per counterfactual own action ã, softmaxes in
    float64, the marginal weighted by the agent's own policy, the divergence per other agent,
    times visibility. Scalar loops over models, games and others."""
    lay = trainer.layout
    conv = net.conv(lay.to_models(obs.image))
    policy_logits, _, _ = net.policy_step(net.core.features(conv), lay.to_models(obs.actions), memory.policy)
    own = torch.softmax(policy_logits.double(), -1)  # π^k(ã | s^k_t), [M, E, A]
    moa_features = net.moa_core.features(conv)
    predictions = []
    for a in range(net.num_actions):
        replaced = all_actions.clone()
        replaced[..., 0] = a
        gates = net.moa_core.gates(moa_features, {"all": replaced}, memory.moa)
        h = net.moa_core.cell(gates, memory.moa.c).h
        predictions.append(torch.softmax(net.moa_head(h).double(), -1))  # [M, E, N-1, A]
    p = torch.stack(predictions, 2)  # [M, E, ã, N-1, A]
    m_count, e_count, others = all_actions.shape[0], all_actions.shape[1], all_actions.shape[2] - 1
    pairs = torch.zeros(m_count, e_count, others, dtype=torch.float64)
    for m in range(m_count):
        for e in range(e_count):
            for j in range(others):
                cond = p[m, e, int(all_actions[m, e, 0]), j]
                marginal = sum(own[m, e, a] * p[m, e, a, j] for a in range(net.num_actions))
                pairs[m, e, j] = divergence_of(cond, marginal, divergence) * float(visible[m, e, j])
    return pairs


def moa_gates_and_logits(trainer: Trainer, obs, memory: Memory, all_actions: torch.Tensor):
    """What `act` hands the MOA source: the MOA gates of this step and the policy logits."""
    net, lay = trainer.net, trainer.layout
    conv = net.conv(lay.to_models(obs.image))
    logits, _, _ = net.policy_step(net.core.features(conv), lay.to_models(obs.actions), memory.policy)
    gates = net.moa_core.gates(net.moa_core.features(conv), {"all": all_actions}, memory.moa)
    return gates, logits


# ---------------------------------------------------------------------- brute force
@pytest.mark.parametrize("divergence", ["kl", "jsd"])
def test_moa_influence_matches_brute_force_float64(divergence):
    """With float64 networks the trainer's MOA influence (counterfactual gates by a row swap,
    one LSTM cell and head call for all ã) equals the from-scratch rerun to ~1e-12."""
    tr = make_trainer(moa_config(num_agents=3, divergence=divergence), seeds=(0, 4), games=3)
    sharpen(tr.net)
    advance(tr, 4)
    to_double(tr)
    checked_hidden = False
    for _ in range(2):
        obs, memory = tr.state.obs, tr.state.memory
        out = tr.act(obs, memory)
        step = out.transition
        lay = tr.layout
        # the own-first action input: agent k's slot 0 is its own action, then the others in index order
        actions = lay.to_games(step.actions)
        n = tr.N
        for k in range(n):
            expected = [k] + [j for j in range(n) if j != k]
            assert torch.equal(lay.to_games(step.all_actions)[:, k], actions[:, expected])
        assert torch.equal(step.visible, lay.to_models(obs.visible))
        pairs = brute_force_moa_influence(tr, tr.net, obs, memory, step.all_actions, step.visible, divergence)
        influence = out.influence
        assert influence.reward.dtype == influence.pairs.dtype == influence.nonnegative.dtype == torch.float64
        torch.testing.assert_close(lay.to_models(influence.pairs), pairs, rtol=1e-11, atol=1e-15)
        assert torch.equal(influence.nonnegative, influence.pairs)  # KL and JSD are never negative
        exerted = pairs.sum(-1)
        torch.testing.assert_close(lay.to_models(influence.reward), exerted.clamp(-10, 10), rtol=1e-11, atol=1e-15)
        # not vacuous: the visible pairs are far from 0, and some others are out of view
        assert (pairs[step.visible] > 1e-3).all()
        checked_hidden |= bool((~step.visible).any())
        tr.state.obs, _, _, _ = tr.env.step(lay.to_games(step.actions))
        tr.state.memory = out.memory
    assert checked_hidden, "no other agent was ever out of view: the visibility mask went untested"


def test_moa_influence_float32_network_close_to_float64_brute_force():
    """The trainer as it runs (float32 networks, float64 log-softmax and divergences) agrees
    with the float64 rerun of the same weights up to the float32 rounding of the network."""
    tr = make_trainer(moa_config(num_agents=4), seeds=(1,), games=3)
    sharpen(tr.net)
    advance(tr, 3)
    obs, memory = tr.state.obs, tr.state.memory
    out = tr.act(obs, memory)
    net64 = copy.deepcopy(tr.net).double()
    memory64 = Memory(LSTMState(*(x.double() for x in memory.policy)), LSTMState(*(x.double() for x in memory.moa)))
    step = out.transition
    pairs = brute_force_moa_influence(tr, net64, obs, memory64, step.all_actions, step.visible, "kl")
    assert out.influence.reward.dtype == torch.float64
    torch.testing.assert_close(tr.layout.to_models(out.influence.pairs), pairs, rtol=1e-4, atol=1e-7)
    assert (pairs[step.visible] > 1e-3).all()


def test_moa_influence_of_near_identical_predictions_float32_network():
    """The MOA barely depends on the own action (its input weights scaled by 1e-3), so the
    counterfactual predictions differ by ~1e-4 and the influence is tiny. Float32 networks
    with a float64 log-softmax and divergence still give it within 1% of the float64 rerun
    (a float32 log-softmax would be off by its ~1e-7 rounding, at first order)."""
    tr = make_trainer(moa_config(num_agents=3), seeds=(0, 4), games=3)
    sharpen(tr.net)
    advance(tr, 3)
    with torch.no_grad():
        tr.net.moa_core.lstm_wx[:, tr.net.moa_core.block_rows("all", 0)] *= 1e-3
    obs, memory = tr.state.obs, tr.state.memory
    out = tr.act(obs, memory)
    net64 = copy.deepcopy(tr.net).double()
    memory64 = Memory(LSTMState(*(x.double() for x in memory.policy)), LSTMState(*(x.double() for x in memory.moa)))
    step = out.transition
    pairs = brute_force_moa_influence(tr, net64, obs, memory64, step.all_actions, step.visible, "kl")
    seen = pairs[step.visible]
    assert seen.max() < 1e-5 and seen.min() > 0
    got = tr.layout.to_models(out.influence.pairs)[step.visible]
    assert ((got - seen) / seen).abs().max() < 0.01


# ---------------------------------------------------------------------- exact zero, visibility, clip
def test_moa_influence_zero_when_moa_ignores_own_action():
    tr = make_trainer(moa_config(num_agents=3), seeds=(0, 4), games=3)
    sharpen(tr.net)
    advance(tr, 3)
    obs, memory = tr.state.obs, tr.state.memory
    before = tr.act(obs, memory).influence
    assert (before.pairs[obs.visible] > 1e-3).all()  # env layout, like obs.visible
    with torch.no_grad():
        tr.net.moa_core.lstm_wx[:, tr.net.moa_core.block_rows("all", 0)] = 0.0
    out = tr.act(obs, memory)
    # the counterfactual MOA predictions are the same for every own action (up to a few
    # float32 ulps of the batched head matmul, depending on the BLAS)...
    gates, _ = moa_gates_and_logits(tr, obs, memory, out.transition.all_actions)
    cf = tr.influence_source.counterfactual_log_predictions(gates, memory.moa.c, out.transition.all_actions)
    assert (cf - cf[:, :, :, :1]).abs().max() < 1e-5
    # ...so the influence vanishes up to rounding (~1e-16 here), against 1e-2 before
    for x in (out.influence.reward, out.influence.pairs, out.influence.nonnegative):
        assert x.abs().max() <= 1e-13


def test_moa_influence_exactly_zero_when_moa_ignores_own_action():
    tr = make_trainer(moa_config(num_agents=3), seeds=(0, 4), games=3)
    sharpen(tr.net)
    advance(tr, 3)
    with torch.no_grad():
        tr.net.moa_core.lstm_wx[:, tr.net.moa_core.block_rows("all", 0)] = 0.0
    out = tr.act(tr.state.obs, tr.state.memory)
    assert torch.equal(out.influence.pairs, torch.zeros_like(out.influence.pairs))
    assert torch.equal(out.influence.reward, torch.zeros_like(out.influence.reward))


def test_sparsity_of_an_agent_without_influence_is_zero():
    tr = make_trainer(moa_config(num_agents=3, rollout_length=10), seeds=(0,), games=4, horizon=10)
    with torch.no_grad():
        tr.net.moa_core.lstm_wx[:, tr.net.moa_core.block_rows("all", 0)] = 0.0
    tr.collect()  # one whole episode, before any update
    (row,) = tr.episodes
    for k in range(3):
        assert row[f"influence_{k}"] == 0.0
        assert row[f"influence_mean_{k}"] == 0.0
        assert row[f"influence_above_mean_{k}"] == 0.0


def moa_source(source: MOAInfluence, gates, c, all_actions, logits, visible):
    """Call an MOA source with the step inputs it reads (the policy's are not used)."""
    return source(StepInputs(None, None, None, logits, all_actions[..., 0], gates, c, all_actions, visible))


def test_moa_influence_counts_only_others_in_view():
    tr = make_trainer(moa_config(num_agents=4), seeds=(0, 2), games=2)
    sharpen(tr.net)
    advance(tr, 3)
    obs, memory = tr.state.obs, tr.state.memory
    all_actions = tr.act(obs, memory).transition.all_actions
    gates, logits = moa_gates_and_logits(tr, obs, memory, all_actions)
    source, lay = tr.influence_source, tr.layout
    everyone = moa_source(source, gates, memory.moa.c, all_actions, logits, torch.ones_like(all_actions[..., 1:], dtype=torch.bool))
    full = lay.to_models(everyone.pairs)
    assert (full > 1e-3).all()
    gen = torch.Generator().manual_seed(3)
    masks = [torch.zeros_like(full, dtype=torch.bool), torch.rand(full.shape, generator=gen) < 0.5]
    eye = torch.zeros_like(full, dtype=torch.bool)
    eye[..., 1] = True  # only the second other agent in view
    masks.append(eye)
    for visible in masks:
        out = moa_source(source, gates, memory.moa.c, all_actions, logits, visible)
        pairs = lay.to_models(out.pairs)
        assert torch.equal(pairs[~visible], torch.zeros_like(pairs[~visible]))  # exactly 0 out of view
        assert torch.equal(pairs[visible], full[visible])  # in view: unchanged
        expected = torch.where(visible, full, torch.zeros_like(full)).sum(-1)
        torch.testing.assert_close(lay.to_models(out.reward), expected.clamp(-10, 10), rtol=1e-12, atol=0.0)
    nobody = moa_source(source, gates, memory.moa.c, all_actions, logits, masks[0])
    assert torch.equal(nobody.reward, torch.zeros_like(nobody.reward))


def test_moa_influence_clipped_to_ten():
    """An own action the policy almost never takes, with sharp MOA predictions, gives pairs
    of KL ≈ -log π(a) ≫ 10: the reward is clipped at 10, the pairs are not."""
    tr = make_trainer(moa_config(num_agents=4), seeds=(0,), games=4)
    sharpen(tr.net)
    with torch.no_grad():
        tr.net.moa_head.w.mul_(20.0)
    advance(tr, 2)
    obs, memory = tr.state.obs, tr.state.memory
    all_actions = tr.act(obs, memory).transition.all_actions
    gates, logits = moa_gates_and_logits(tr, obs, memory, all_actions)
    visible = torch.ones_like(all_actions[..., 1:], dtype=torch.bool)
    source = tr.influence_source
    # moderate: the policy's own logits; extreme: the taken action gets log-probability ≈ -40
    moderate = moa_source(source, gates, memory.moa.c, all_actions, logits, visible)
    taken = F.one_hot(all_actions[..., 0], tr.net.num_actions).bool()
    extreme = moa_source(source, gates, memory.moa.c, all_actions, torch.where(taken, -40.0, 0.0), visible)
    assert MOA_REWARD_CLIP == 10.0
    for out in (moderate, extreme):
        assert torch.equal(out.reward, out.pairs.sum(-1).clamp(-10.0, 10.0))
    assert (moderate.pairs.sum(-1) < 10.0).any()
    exerted = extreme.pairs.sum(-1)
    clipped = exerted > 10.0
    assert clipped.any() and (exerted.max() > 20.0)
    assert torch.equal(extreme.reward[clipped], torch.full_like(extreme.reward[clipped], 10.0))
    assert (extreme.pairs >= 0).all()  # KL is never negative: the lower clip never binds


# ---------------------------------------------------------------------- reward timing
def test_influence_reward_credited_to_the_step_of_the_action():
    """In a rollout the reward trained on at step t is α e_t + β w c_t with c_t from `act` at
    step t (the MOA's prediction of the actions at t + 1), not from a neighbouring step."""
    config = moa_config(num_agents=3, rollout_length=6)
    config = dataclasses.replace(config, reward=dataclasses.replace(config.reward, influence_weight=50.0,
                                                                    curriculum_steps=0.0))
    tr = make_trainer(config, seeds=(0,), games=2, horizon=20)
    sharpen(tr.net)
    acts, extrinsic, steps_after = [], [], []
    real_act, real_step = tr.act, tr.state.env.step

    def act(obs, memory, with_influence=True, keep_graph=False):
        out = real_act(obs, memory, with_influence, keep_graph)
        if with_influence:
            acts.append(out)
        return out

    def step(actions, check_range=True):
        result = real_step(actions, check_range)
        extrinsic.append(result[1].clone())
        steps_after.append(tr.state.env_steps + tr.E)
        return result

    tr.act, tr.state.env.step = act, step
    batch = tr.collect()
    assert len(acts) == len(extrinsic) == 6
    alpha, beta = config.reward.extrinsic_weight, config.reward.influence_weight
    for t in range(6):
        scale = beta * curriculum_weight(steps_after[t], tr.curriculum_steps)
        expected = (alpha * extrinsic[t].double() + scale * acts[t].influence.reward).float()
        assert torch.equal(batch.steps.reward[t], tr.layout.to_models(expected))
        if t > 0:  # the influence moves from step to step, so an off-by-one would show
            assert not torch.allclose(acts[t].influence.reward, acts[t - 1].influence.reward)


# ---------------------------------------------------------------------- MOA loss: timing and masks
def manual_moa_terms(moa_logits, steps, mask_visible: bool, shift: int = 1, mask_done: bool = True):
    """Per model: mean over (t, e, j) of -log p̂_t(a^j_{t+shift}) over the kept entries, and
    the accuracy; scalar loops, float64."""
    t_len, m_count, e_count, others = moa_logits.shape[:4]
    losses, accuracies = [], []
    for m in range(m_count):
        total, correct, count = 0.0, 0.0, 0
        for t in range(t_len - 1):
            for e in range(e_count):
                if mask_done and steps.done[t, m, e]:
                    continue
                for j in range(others):
                    if mask_visible and not steps.visible[t, m, e, j]:
                        continue
                    target = int(steps.all_actions[t + shift, m, e, 1 + j])
                    log_p = torch.log_softmax(moa_logits[t, m, e, j].double(), -1)
                    total -= float(log_p[target])
                    correct += float(int(moa_logits[t, m, e, j].argmax()) == target)
                    count += 1
        losses.append(total / max(count, 1))
        accuracies.append(correct / max(count, 1))
    return torch.tensor(losses, dtype=torch.float64), torch.tensor(accuracies, dtype=torch.float64)


@pytest.mark.parametrize("name", ["cleanup_moa_influence", "cleanup_moa_baseline"])
def test_moa_loss_targets_next_actions_with_masks(name):
    """The prediction made at step t (after all actions of t) is scored against the others'
    actions at t + 1; steps whose episode ended, the rollout's last step and (with
    moa_only_visible) others out of view at t are left out."""
    config = moa_config(name, num_agents=3, rollout_length=12)
    only_visible = config.optim.moa_only_visible
    assert only_visible == (name == "cleanup_moa_influence")
    tr = make_trainer(config, seeds=(0, 4), games=3, horizon=5)
    sharpen(tr.net)
    advance(tr, 2)
    predicted_when_acting = []
    real_act = tr.act

    def act(obs, memory, with_influence=True, keep_graph=False):
        out = real_act(obs, memory, with_influence, keep_graph)
        if with_influence:
            predicted_when_acting.append(tr.net.moa_head(out.memory.moa.h))
        return out

    tr.act = act
    batch = tr.collect()
    steps = batch.steps
    assert steps.done[:-1].any() and not steps.done.all()  # episodes end inside the rollout
    assert not steps.visible[:-1].all()
    with torch.no_grad():
        moa_logits = tr.evaluate(batch).moa_logits
        zeros = torch.zeros_like(steps.value)
        _, terms = tr.loss(batch, zeros, zeros, slice(None))
    # evaluate's prediction at index t is the one the MOA made while acting at step t
    torch.testing.assert_close(moa_logits, torch.stack(predicted_when_acting), rtol=1e-5, atol=1e-5)
    loss, accuracy = manual_moa_terms(moa_logits, steps, only_visible)
    torch.testing.assert_close(terms["moa"].double(), loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms["moa_accuracy"].double(), accuracy, rtol=1e-6, atol=1e-6)
    # each rule matters here: a same-step target, no done mask, the other visibility rule all differ
    same_step, _ = manual_moa_terms(moa_logits, steps, only_visible, shift=0)
    unmasked_done, _ = manual_moa_terms(moa_logits, steps, only_visible, mask_done=False)
    other_rule, _ = manual_moa_terms(moa_logits, steps, not only_visible)
    for wrong in (same_step, unmasked_done, other_rule):
        assert (wrong - loss).abs().max() > 1e-3
    # and through the library's moa_loss on the shifted targets directly
    targets = steps.all_actions[1:, :, :, 1:]
    mask = ~steps.done[:-1, :, :, None].expand_as(targets)
    if only_visible:
        mask = mask & steps.visible[:-1]
    total, direct = moa_loss(moa_logits[:-1], targets, mask)
    assert torch.equal(direct["moa"], terms["moa"])
    torch.testing.assert_close(total, terms["moa"].sum())


# ---------------------------------------------------------------------- learning a scripted agent
SCRIPTS = (lambda a: a // 2, lambda a: (a + 1) % 5)  # others' next action as a function of the learner's action


def scripted_rollout(gen: torch.Generator, policy: torch.Tensor, games: int, length: int) -> torch.Tensor:
    """all_actions [T, 1, E, 3] (learner first): the learner samples from `policy`; scripted
    agent j's action at t + 1 is SCRIPTS[j](learner's action at t)."""
    a = torch.multinomial(policy.expand(games, -1), length, replacement=True, generator=gen).T  # [T, E]
    first = torch.randint(0, 5, (2, games), generator=gen)
    others = [torch.cat([first[j : j + 1], f(a[:-1])]) for j, f in enumerate(SCRIPTS)]
    return torch.stack([a, *others], -1)[:, None]


def test_moa_learns_scripted_agent_and_influence_reaches_closed_form():
    """An MOA trained with the library's `moa_loss` beside scripted agents whose next action
    is a fixed function f_j of the learner's current action predicts them almost perfectly;
    the MOA influence then tends to its closed form. With p̂(a^j_{t+1} | ã) = onehot(f_j(ã)):
    marginal Σ_ã π(ã) onehot(f_j(ã)) puts mass π(f_j^{-1}(b)) on b, so
    KL[onehot(f_j(a)) ‖ marginal] = -log Σ_{ã: f_j(ã) = f_j(a)} π(ã), summed over j."""
    actions, games, length = 5, 64, 8
    net = AgentNetworks(actions, 3, True, True, [11])
    policy_logits = torch.tensor([0.6, -0.4, 0.1, 0.9, -0.7])
    policy = torch.softmax(policy_logits, -1)
    gen = torch.Generator().manual_seed(5)
    params = [net.moa_core.lstm_wx, net.moa_core.lstm_wh, net.moa_core.lstm_b, net.moa_head.w, net.moa_head.b]
    optimizer = torch.optim.Adam(params, lr=1e-2)

    def run(all_actions: torch.Tensor, features: torch.Tensor):
        state = net.moa_core.initial_state(games)
        logits, inputs = [], []
        for t in range(length):
            inputs.append((state, all_actions[t]))
            gates, predicted, state = net.moa_step(features[t], all_actions[t], state)
            logits.append(predicted)
        return torch.stack(logits), inputs

    def batch():
        all_actions = scripted_rollout(gen, policy, games, length)
        features = torch.rand(length, 1, games, FC_SIZES[1], generator=gen) * 2 - 1  # noise the MOA must ignore
        return all_actions, features

    source = MOAInfluence(net, Layout(1, 1, games), "kl")

    def influence_and_accuracy():
        all_actions, features = batch()
        with torch.no_grad():
            logits, inputs = run(all_actions, features)
            _, terms = moa_loss(logits[:-1], all_actions[1:, ..., 1:], torch.ones_like(all_actions[1:, ..., 1:], dtype=torch.bool))
            rewards, closed = [], []
            for t in (2, 5):
                state, taken = inputs[t]
                gates = net.moa_core.gates(features[t], {"all": taken}, state)
                out = moa_source(source, gates, state.c, taken, policy_logits.expand(1, games, -1),
                             torch.ones(1, games, 2, dtype=torch.bool))
                rewards.append(out.reward[:, 0])
                a = taken[0, :, 0]
                closed.append(sum(-torch.log(torch.stack([policy[[x for x in range(actions) if f(x) == f(int(b))]].sum()
                                                          for b in a])).double() for f in SCRIPTS))
        return torch.cat(rewards), torch.cat(closed), float(terms["moa_accuracy"][0])

    before, closed, accuracy = influence_and_accuracy()
    assert accuracy < 0.5
    assert (before - closed).abs().mean() > 0.5  # untrained: nowhere near the closed form
    for _ in range(150):
        all_actions, features = batch()
        logits, _ = run(all_actions, features)
        loss, _ = moa_loss(logits[:-1], all_actions[1:, ..., 1:], torch.ones_like(all_actions[1:, ..., 1:], dtype=torch.bool))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    reward, closed, accuracy = influence_and_accuracy()
    assert accuracy > 0.95
    assert (reward - closed).abs().max() < 0.1
    assert (reward - closed).abs().mean() < 0.03
    assert closed.std() > 0.3  # the closed form varies with the action taken, so this is not a constant match


# ---------------------------------------------------------------------- independence
def test_no_agent_reads_another_agents_network():
    """Changing every parameter slice of one copy (policy, value, conv, MOA) changes that
    agent's outputs and leaves every other agent's policy, MOA predictions and influence
    reward (for the same inputs) bit for bit unchanged."""
    tr = make_trainer(moa_config(num_agents=3), seeds=(0, 4), games=2)
    sharpen(tr.net)
    advance(tr, 3)
    obs, memory = tr.state.obs, tr.state.memory
    all_actions = tr.act(obs, memory).transition.all_actions
    visible = tr.layout.to_models(obs.visible)
    net, lay = tr.net, tr.layout

    @torch.no_grad()
    def outputs() -> dict[str, torch.Tensor]:
        conv = net.conv(lay.to_models(obs.image))
        logits, value, _ = net.policy_step(net.core.features(conv), lay.to_models(obs.actions), memory.policy)
        gates, predicted, _ = net.moa_step(net.moa_core.features(conv), all_actions, memory.moa)
        influence = moa_source(tr.influence_source, gates, memory.moa.c, all_actions, logits, visible)
        return {"logits": logits, "value": value, "moa": predicted, "reward": lay.to_models(influence.reward),
                "pairs": lay.to_models(influence.pairs)}

    before = outputs()
    changed = 4  # seed 4, agent 1
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in net.named_parameters():
            assert p.shape[0] == lay.models, name
            p[changed] += 0.05 * torch.randn(p.shape[1:], generator=gen) * (p[changed].abs().mean() + 1e-2)
    after = outputs()
    others = [m for m in range(lay.models) if m != changed]
    for key in before:
        assert torch.equal(before[key][others], after[key][others]), key
        assert not torch.equal(before[key][changed], after[key][changed]), key


# ---------------------------------------------------------------------- resume bit for bit
TINY_MOA_TOML = """
name = "tiny_cleanup_moa_influence"
env = "cleanup"
num_agents = 3

[model]
action_inputs = true
moa = true

[reward]
scheme = "influence"
influence_source = "moa"
influence_weight = 0.620
divergence = "kl"
curriculum_steps = 4e6

[optim]
entropy_coef = 0.00176
lr_init = 0.00123
lr_end = 0.000012
moa_loss_weight = 15.007
moa_only_visible = true
rollout_length = 8
"""

TINY = Preset("tiny_moa", total_steps=96, num_envs=2, horizon=10, checkpoint_seconds=0.0)  # 6 iterations


def test_moa_run_resumes_bit_for_bit(tmp_path, monkeypatch):
    monkeypatch.setitem(PRESETS, TINY.name, TINY)
    config = tmp_path / "tiny_moa.toml"
    config.write_text(textwrap.dedent(TINY_MOA_TOML))
    seeds = [0, 3]
    full = train(str(config), TINY.name, seeds, "cpu", tmp_path / "full", progress=False)
    part = train(str(config), TINY.name, seeds, "cpu", tmp_path / "part", progress=False, max_iterations=4)
    assert not (part / "done").exists()
    stopped = load_checkpoint(part / "checkpoint.pt")
    assert stopped["env_steps"] == 4 * 8 * 2 and stopped["memory"]["moa"] is not None
    torch.manual_seed(12345)  # the global RNG must play no part
    train(str(config), TINY.name, seeds, "cpu", part, progress=False)  # a fresh Trainer, from the file
    assert (part / "done").is_file()

    def metrics(run: Path) -> pd.DataFrame:
        return pd.read_parquet(run / "metrics.parquet").drop(columns="wall_time")

    expected = metrics(full)
    pd.testing.assert_frame_equal(metrics(part), expected, check_exact=True)
    assert len(expected) == 2 * 4  # 4 episodes of 10 steps per seed
    for column in ("loss_moa", "moa_accuracy", "influence_0", "influence_mean_2", "influence_above_mean_1"):
        assert column in expected.columns
    assert (expected[[f"influence_{k}" for k in range(3)]] > 0).all().all()
    a, b = load_checkpoint(full / "checkpoint.pt"), load_checkpoint(part / "checkpoint.pt")
    assert a["net"].keys() == b["net"].keys()
    for name in a["net"]:
        assert torch.equal(a["net"][name], b["net"][name]), name
    assert any(name.startswith("moa_core.") for name in a["net"])
    for state_a, state_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for key in state_a:
            assert torch.equal(torch.as_tensor(state_a[key]), torch.as_tensor(state_b[key]))
    for x, y in zip(a["memory"]["moa"] + a["memory"]["policy"], b["memory"]["moa"] + b["memory"]["policy"]):
        assert torch.equal(x, y)
