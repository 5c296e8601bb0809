"""Training: advantages, reward schemes, the trainer's layout, acting order, influence reward
and gradient clipping, determinism, resumption, the CLI, and every packaged config."""

import copy
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from ssdlib.agents.blocks import FC_SIZES
from ssdlib.training.conditions.config import config_from_dict, config_names, load_config
from ssdlib.training.conditions.presets import PRESETS, Preset, get_preset
from ssdlib.train import main, parse_seeds, train
from ssdlib.training.advantages import gae
from ssdlib.training.rewards import (
    inequity_aversion_reward,
    influence_shaped_reward,
    prosocial_reward,
    smooth_rewards,
)
from ssdlib.training.state import load_checkpoint
from ssdlib.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------- advantages
def test_gae_lambda_1_is_n_step_return():
    gamma = 0.9
    r = torch.tensor([1.0, -2.0, 0.5, 3.0])
    v = torch.tensor([0.2, 0.4, -1.0, 2.0])
    last = torch.tensor(5.0)
    adv, ret = gae(r, v, torch.zeros(4, dtype=torch.bool), last, gamma, 1.0)
    expected_returns = [
        sum(gamma ** (k - t) * r[k].item() for k in range(t, 4)) + gamma ** (4 - t) * last.item() for t in range(4)
    ]
    torch.testing.assert_close(ret, torch.tensor(expected_returns))
    torch.testing.assert_close(adv, torch.tensor(expected_returns) - v)
    # by hand, t = 3 and t = 2
    assert ret[3].item() == pytest.approx(3.0 + 0.9 * 5.0)
    assert ret[2].item() == pytest.approx(0.5 + 0.9 * 3.0 + 0.81 * 5.0)


def test_gae_lambda_0_is_one_step_td():
    gamma = 0.5
    r = torch.tensor([1.0, 2.0, 3.0])
    v = torch.tensor([10.0, 20.0, 30.0])
    adv, ret = gae(r, v, torch.zeros(3, dtype=torch.bool), torch.tensor(40.0), gamma, 0.0)
    torch.testing.assert_close(adv, torch.tensor([1 + 0.5 * 20 - 10, 2 + 0.5 * 30 - 20, 3 + 0.5 * 40 - 30.0]))
    torch.testing.assert_close(ret, torch.tensor([1 + 0.5 * 20, 2 + 0.5 * 30, 3 + 0.5 * 40.0]))


def test_gae_done_masking():
    """An episode ending with step 1 cuts both the bootstrap and the advantage recursion."""
    gamma = 0.5
    r = torch.tensor([1.0, 2.0, 4.0, 8.0])
    v = torch.tensor([1.0, 1.0, 1.0, 1.0])
    dones = torch.tensor([False, True, False, False])
    last = torch.tensor(16.0)
    adv, ret = gae(r, v, dones, last, gamma, 1.0)
    torch.testing.assert_close(ret, torch.tensor([1 + 0.5 * 2, 2.0, 4 + 0.5 * 8 + 0.25 * 16, 8 + 0.5 * 16]))
    torch.testing.assert_close(adv, ret - v)
    adv0, _ = gae(r, v, dones, last, gamma, 0.0)
    torch.testing.assert_close(adv0, torch.tensor([1 + 0.5 * 1 - 1, 2 - 1.0, 4 + 0.5 * 1 - 1, 8 + 0.5 * 16 - 1]))
    # intermediate lambda: A_t = delta_t + gamma lambda (1 - d_t) A_{t+1}
    lam = 0.5
    adv_l, _ = gae(r, v, dones, last, gamma, lam)
    d = adv0
    a3 = d[3]
    a2 = d[2] + gamma * lam * a3
    a1 = d[1]
    a0 = d[0] + gamma * lam * a1
    torch.testing.assert_close(adv_l, torch.stack([a0, a1, a2, a3]))


def test_gae_is_independent_per_column():
    gen = torch.Generator().manual_seed(0)
    r, v = torch.randn(6, 3, 2, generator=gen), torch.randn(6, 3, 2, generator=gen)
    dones = torch.rand(6, 3, 2, generator=gen) < 0.3
    last = torch.randn(3, 2, generator=gen)
    adv, ret = gae(r, v, dones, last, 0.9, 0.8)
    for i in range(3):
        for j in range(2):
            a, rt = gae(r[:, i, j], v[:, i, j], dones[:, i, j], last[i, j], 0.9, 0.8)
            torch.testing.assert_close(adv[:, i, j], a)
            torch.testing.assert_close(ret[:, i, j], rt)


# ---------------------------------------------------------------------- reward schemes
def test_prosocial_reward():
    e = torch.tensor([[1.0, 2.0, 3.0], [0.0, -50.0, 1.0]])
    torch.testing.assert_close(prosocial_reward(e, 0.5), torch.tensor([[3.5, 4.0, 4.5], [-24.5, -49.5, -24.0]]))
    torch.testing.assert_close(prosocial_reward(e, 0.0), e)


def test_influence_shaped_reward():
    out = influence_shaped_reward(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 2.0]), 1.0, 0.1)
    torch.testing.assert_close(out, torch.tensor([1.05, 0.2]))


def test_smooth_rewards():
    out = smooth_rewards(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]), 0.9, 0.5)
    torch.testing.assert_close(out, torch.tensor([0.45, 2.0]))
    # two steps from zero: e_1 (γλ) + e_2
    s = smooth_rewards(torch.zeros(1), torch.tensor([4.0]), 0.5, 0.5)
    s = smooth_rewards(s, torch.tensor([1.0]), 0.5, 0.5)
    torch.testing.assert_close(s, torch.tensor([4.0 * 0.25 + 1.0]))


def test_inequity_aversion_reward():
    e = torch.tensor([1.0, 1.0, 1.0])
    smoothed = torch.tensor([0.0, 1.0, 3.0])
    # alpha only (disadvantageous: others ahead): agent 0 behind by 1 + 3, agent 1 by 2
    torch.testing.assert_close(inequity_aversion_reward(e, smoothed, 1.0, 0.0), torch.tensor([1 - 4 / 2, 1 - 2 / 2, 1.0]))
    # beta only (advantageous: k ahead): agent 1 ahead of agent 0 by 1, agent 2 by 3 + 2
    torch.testing.assert_close(inequity_aversion_reward(e, smoothed, 0.0, 1.0), torch.tensor([1.0, 1 - 1 / 2, 1 - 5 / 2]))
    # both
    torch.testing.assert_close(
        inequity_aversion_reward(e, smoothed, 2.0, 0.5),
        torch.tensor([1 - (2 * 4) / 2, 1 - (2 * 2 + 0.5 * 1) / 2, 1 - (0.5 * 5) / 2]),
    )
    # equal smoothed rewards: no penalty; batched leading dims
    batch = torch.tensor([[2.0, 2.0], [0.0, 4.0]])
    torch.testing.assert_close(
        inequity_aversion_reward(torch.ones(2, 2), batch, 5.0, 0.05), torch.tensor([[1.0, 1.0], [1 - 5 * 4.0, 1 - 0.05 * 4.0]])
    )


# ---------------------------------------------------------------------- trainer helpers
def make_config(num_agents=3, influencers=0, action_inputs=None, scheme="extrinsic", env="harvest", **sections):
    data = {
        "name": "test",
        "env": env,
        "num_agents": num_agents,
        "model": {"action_inputs": influencers > 0 if action_inputs is None else action_inputs, "influencers": influencers},
        "reward": {"scheme": scheme, **sections.pop("reward", {})},
        "optim": {"rollout_length": 6, **sections.pop("optim", {})},
        **sections,
    }
    return config_from_dict(data)


def advance(trainer: Trainer, steps: int) -> None:
    """Step the trainer's games under its policies, without learning."""
    st = trainer.state
    for _ in range(steps):
        out = trainer.act(st.obs, st.memory)
        st.obs, _, _, _ = trainer.env.step(trainer.to_games(out.transition.actions))
        st.memory = out.memory


def encode(net, image: torch.Tensor) -> torch.Tensor:
    """Palette images [M, E, 15, 15] -> the policy core's FC features [M, E, 32]."""
    return net.core.features(net.conv(image))


def test_to_models_to_games_layout():
    seeds, n, e = [4, 7], 3, 2
    tr = Trainer(make_config(num_agents=n), Preset("p", 1000, e, horizon=20), seeds)
    s_count = len(seeds)
    b = s_count * e
    # x[b, n] encodes (seed index s, game e, agent n) with b = s * E + e
    x = torch.tensor([[100 * (g // e) + 10 * (g % e) + a for a in range(n)] for g in range(b)])
    models = tr.to_models(x)
    assert models.shape == (s_count * n, e)
    for s in range(s_count):
        for agent in range(n):
            for game in range(e):
                assert models[s * n + agent, game] == 100 * s + 10 * game + agent
    assert torch.equal(tr.to_games(models), x)
    y = torch.randn(s_count * n, e, 5, 4)
    assert torch.equal(tr.to_models(tr.to_games(y)), y)
    obs = torch.randn(b, n, 15, 15)
    assert torch.equal(tr.to_games(tr.to_models(obs)), obs)
    assert tr.net.num_models == s_count * n


def test_influencers_act_first():
    """Influencees condition on the influencers' actions of the same step; influencers (and
    the influencee slots) on the actions of the previous step."""
    k, n = 2, 4
    tr = Trainer(make_config(num_agents=n, influencers=k), Preset("p", 1000, 3, horizon=50), [0, 1])
    advance(tr, 2)
    differs = False
    for _ in range(4):
        obs, memory = tr.state.obs, tr.state.memory
        out = tr.act(obs, memory)
        step = out.transition
        cond = tr.to_games(step.others)  # [B, N, N-1]
        actions = tr.to_games(step.actions)  # [B, N]
        assert torch.equal(cond[:, k:, :k], actions[:, None, :k].expand(-1, n - k, -1))
        assert torch.equal(cond[:, :k], obs.actions[:, :k])
        assert torch.equal(cond[:, k:, k:], obs.actions[:, k:, k:])
        differs |= not torch.equal(cond[:, k:, :k], obs.actions[:, k:, :k])
        # the actions were sampled from the policies under exactly that conditioning
        with torch.no_grad():
            features = encode(tr.net, tr.to_models(obs.image))
            logits, value, _ = tr.net.policy_step(features, step.others, memory.policy)
        logp = F.log_softmax(logits, -1).gather(-1, step.actions[..., None]).squeeze(-1)
        torch.testing.assert_close(step.logp, logp, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(step.value, value, atol=1e-5, rtol=1e-5)
        tr.state.obs, _, _, _ = tr.env.step(actions)
        tr.state.memory = out.memory
    assert differs, "the test never saw an influencer change its action"
    # the rollout stores the same-step conditioning, and re-evaluating it reproduces acting
    tr.config = dataclasses.replace(tr.config, optim=dataclasses.replace(tr.config.optim, rollout_length=8))
    batch = tr.collect()
    for t in range(8):
        cond, actions = tr.to_games(batch.steps.others[t]), tr.to_games(batch.steps.actions[t])
        assert torch.equal(cond[:, k:, :k], actions[:, None, :k].expand(-1, n - k, -1))


@pytest.mark.parametrize("seeds", [[0], [0, 1]])
def test_sampling_some_copies_uses_their_draws_of_a_full_draw(seeds):
    """The influencers' first pass samples only their copies (a slice of the models with one
    seed, an index with several), from the uniforms a draw for all copies would give them,
    and leaves the generator where that draw would."""
    tr = Trainer(make_config(num_agents=4, influencers=2), Preset("p", 1000, 3, horizon=50), seeds)
    logits = torch.randn(tr.layout.models, 3, 9)
    rows = tr._influencer_models
    assert rows == slice(0, 2) if len(seeds) == 1 else rows.tolist() == [0, 1, 4, 5]
    start = tr.state.generator.get_state()
    full = tr._sample(logits)
    after_full = tr.state.generator.get_state()
    tr.state.generator.set_state(start)
    some = tr._sample(logits[rows], rows)
    assert torch.equal(some, full[rows])
    assert torch.equal(tr.state.generator.get_state(), after_full)


def test_evaluate_reproduces_acting_across_episode_ends():
    tr = Trainer(make_config(num_agents=3, influencers=1, scheme="influence", reward={"influence_weight": 1.0},
                             optim={"rollout_length": 12}), Preset("p", 1000, 2, horizon=5), [3])
    advance(tr, 2)
    batch = tr.collect()
    assert batch.steps.done.any()
    with torch.no_grad():
        logits, values, moa_logits = tr.evaluate(batch)[:3]
    assert moa_logits is None  # no model of other agents in this condition
    logp = F.log_softmax(logits, -1).gather(-1, batch.steps.actions[..., None]).squeeze(-1)
    torch.testing.assert_close(logp, batch.steps.logp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values, batch.steps.value, atol=1e-5, rtol=1e-5)


def rollout_gradients(tr: Trainer, batch) -> dict[str, torch.Tensor]:
    """Every parameter's gradient of the trainer's loss on `batch` (all games)."""
    tr.net.zero_grad(set_to_none=True)
    advantages, returns, message_targets = tr.targets(batch)
    loss, _ = tr.loss(batch, advantages, returns, slice(None), message_targets)
    loss.backward()
    return {name: p.grad.clone() for name, p in tr.net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", ["cleanup_a3c", "harvest_influence", "cleanup_moa_influence", "harvest_comm_influence"])
def test_the_graph_kept_while_acting_gives_the_gradients_of_a_re_evaluated_rollout(name):
    # A2C learns from the outputs computed while acting (no second pass over the rollout);
    # they must be those of re-running the networks over it, across episode ends.
    config = load_config(name)
    config = dataclasses.replace(config, optim=dataclasses.replace(config.optim, rollout_length=12))
    tr = Trainer(config, Preset("p", 10_000, 3, horizon=5), [0, 1])
    assert tr.keeps_graph
    advance(tr, 2)
    batch = tr.collect()
    assert batch.evaluation is not None and batch.steps.done.any()
    assert not tr.state.memory.policy.h.requires_grad  # the next rollout starts a new graph
    evaluated = rollout_gradients(tr, batch._replace(evaluation=None))
    kept = rollout_gradients(tr, batch)
    assert kept.keys() == evaluated.keys() and len(kept) == len(list(tr.net.parameters()))
    for key, grad in evaluated.items():
        scale = grad.abs().max().item()
        torch.testing.assert_close(kept[key], grad, rtol=1e-4, atol=1e-5 * scale, msg=lambda m: f"{name} {key}: {m}")
        assert scale > 0, f"{name} {key}: no gradient"


def test_a_kept_graph_refuses_a_minibatch_naming_it():
    tr = Trainer(load_config("cleanup_a3c"), Preset("p", 10_000, 2, horizon=5), [0])
    batch = tr.collect()
    advantages, returns, _ = tr.targets(batch)
    with pytest.raises(ValueError, match=r"not games tensor\(\[1\]\)"):
        tr.loss(batch, advantages, returns, torch.tensor([1]))
    tr.loss(batch._replace(evaluation=None), advantages, returns, torch.tensor([1]))  # re-evaluated: fine


def test_ppo_re_evaluates_its_minibatches():
    tr = Trainer(load_config("cleanup_ppo"), Preset("p", 10_000, 2, horizon=5), [0])
    assert not tr.keeps_graph and tr.collect().evaluation is None


def brute_force_influence(tr: Trainer, obs, state, out, divergence: str) -> torch.Tensor:
    """c[b, k, j] recomputed by re-running influencee j's whole network step (in float64) for
    every counterfactual action of influencer k, the other inputs kept."""
    net = copy.deepcopy(tr.net).double()
    state = type(state)(state.h.double(), state.c.double())
    k_count, n, a_count = tr.K, tr.N, tr.net.num_actions
    with torch.no_grad():
        features = encode(net, tr.to_models(obs.image))
        cond = tr.to_games(out.transition.others)
        actions = tr.to_games(out.transition.actions)
        logp = tr.to_games(F.log_softmax(net.policy_step(features, out.transition.others, state)[0], -1))  # [B, N, A]
        c = torch.zeros(actions.shape[0], k_count, n, dtype=torch.float64)
        for k in range(k_count):
            cf = []
            for action in range(a_count):
                replaced = cond.clone()
                replaced[:, k_count:, k] = action
                logits = net.policy_step(features, tr.to_models(replaced), state)[0]
                cf.append(tr.to_games(F.log_softmax(logits, -1)))
            cf = torch.stack(cf, 2)  # [B, N, A(ã), A]
            for b in range(actions.shape[0]):
                for j in range(k_count, n):
                    conditional = cf[b, j, actions[b, k]]
                    marginal = torch.logsumexp(cf[b, j] + logp[b, k][:, None], 0)
                    p, q = conditional.exp(), marginal.exp()
                    if divergence == "kl":
                        value = (p * (conditional - marginal)).sum()
                    elif divergence == "jsd":
                        m = 0.5 * (p + q)
                        value = 0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum()
                    else:
                        value = conditional[actions[b, j]] - marginal[actions[b, j]]
                    c[b, k, j] = value
    return c


@pytest.mark.parametrize("divergence, influencee_reward", [("kl", True), ("jsd", False), ("pmi", True)])
def test_influence_reward_matches_brute_force(divergence, influencee_reward):
    k, n = 2, 4
    config = make_config(num_agents=n, influencers=k, scheme="influence",
                         reward={"influence_weight": 1.0, "divergence": divergence, "influencee_reward": influencee_reward})
    tr = Trainer(config, Preset("p", 1000, 3, horizon=50), [0, 1])
    with torch.no_grad():  # sharper policies and stronger action inputs than at init
        tr.net.head.pi_w.mul_(300)
        tr.net.core.lstm_wx[:, FC_SIZES[1]:].mul_(5)
    advance(tr, 3)
    obs, state = tr.state.obs, tr.state.memory.policy
    out = tr.act(obs, tr.state.memory)
    c = brute_force_influence(tr, obs, state, out, divergence)
    influence = out.influence.reward.double()
    torch.testing.assert_close(influence[:, :k], c.sum(2)[:, :k], atol=2e-6, rtol=1e-3)
    if influencee_reward:
        torch.testing.assert_close(influence[:, k:], c.sum(1)[:, k:], atol=2e-6, rtol=1e-3)
    else:
        assert torch.equal(influence[:, k:], torch.zeros_like(influence[:, k:]))
    if divergence != "pmi":
        assert (influence[:, :k] > 1e-4).all()


@pytest.mark.parametrize("divergence", ["kl", "jsd", "pmi"])
def test_influence_reward_zero_when_influencees_ignore_actions(divergence):
    k, n = 1, 3
    config = make_config(num_agents=n, influencers=k, scheme="influence",
                         reward={"influence_weight": 1.0, "divergence": divergence, "influencee_reward": True})
    tr = Trainer(config, Preset("p", 1000, 4, horizon=50), [0, 1])
    with torch.no_grad():
        tr.net.head.pi_w.mul_(300)
    advance(tr, 3)
    out = tr.act(tr.state.obs, tr.state.memory)
    if divergence != "pmi":
        assert (out.influence.reward > 1e-5).all()  # positive for influencer and (influencee reward) influencees
    else:
        assert out.influence.reward.abs().max() > 1e-3
    with torch.no_grad():
        tr.net.core.lstm_wx[:, FC_SIZES[1]:] = 0.0  # the LSTM ignores the action inputs
    out = tr.act(tr.state.obs, tr.state.memory)
    assert out.influence.reward.abs().max() < 1e-5
    # the trainer's whole rollout: influence sums stay zero
    tr.config = dataclasses.replace(tr.config, optim=dataclasses.replace(tr.config.optim, rollout_length=5))
    tr.collect()
    assert tr.state.stats.influence.abs().max() < 1e-4


def test_gradient_clipping_is_per_model(monkeypatch):
    tr = Trainer(make_config(num_agents=3, optim={"max_grad_norm": 40.0}), Preset("p", 1000, 2, horizon=20), [0])
    params = list(tr.net.parameters())
    gen = torch.Generator().manual_seed(0)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)

    def norms():
        return torch.stack([sum(p.grad[m].pow(2).sum() for p in params).sqrt() for m in range(3)])

    target = torch.tensor([1e6, 1.0, 100.0])
    scale = target / norms()
    for p in params:
        p.grad.mul_(scale.view(-1, *[1] * (p.dim() - 1)))
    before = [p.grad.clone() for p in params]
    monkeypatch.setattr(tr.state.optimizer, "step", lambda *args, **kwargs: None)
    tr._clip_and_step()
    torch.testing.assert_close(norms(), torch.tensor([40.0, 1.0, 40.0]), rtol=1e-4, atol=1e-4)
    for p, old in zip(params, before):
        assert torch.equal(p.grad[1], old[1])  # the small gradient is untouched
        torch.testing.assert_close(p.grad[0], old[0] * 40.0 / 1e6, rtol=1e-4, atol=1e-9)
        torch.testing.assert_close(p.grad[2], old[2] * 0.4, rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------------- runs: determinism, resume, CLI
SMOKE_TOML = """
name = "box_influence_test"
env = "box_trapped"
num_agents = 2

[model]
action_inputs = true
influencers = 1

[reward]
scheme = "influence"
influence_weight = 1.0
divergence = "kl"

[optim]
entropy_coef = 0.01
lr_init = 0.001
lr_end = 0.0001
rollout_length = 50
"""

TINY_CONFIGS = {
    "harvest_influence_a2c": """
        name = "tiny_harvest_influence"
        env = "harvest"
        num_agents = 3

        [env_options]
        map = "@@@@@@@\\n@P A P@\\n@ AAA @\\n@P A  @\\n@@@@@@@\\n"

        [model]
        action_inputs = true
        influencers = 1

        [reward]
        scheme = "influence"
        influence_weight = 0.5
        divergence = "jsd"
        influencee_reward = true
        curriculum_steps = 1e8

        [optim]
        rollout_length = 8
        """,
    "box_influence_ppo": """
        name = "tiny_box_ppo"
        env = "box_trapped"
        num_agents = 2

        [model]
        action_inputs = true
        influencers = 1

        [reward]
        scheme = "influence"
        influence_weight = 1.0
        divergence = "pmi"

        [optim]
        algorithm = "ppo"
        ppo_epochs = 2
        ppo_minibatches = 2
        rollout_length = 8
        """,
    "harvest_inequity_aversion": """
        name = "tiny_harvest_ia"
        env = "harvest"
        num_agents = 2

        [env_options]
        map = "@@@@@@@\\n@P A P@\\n@ AAA @\\n@@@@@@@\\n"

        [reward]
        scheme = "inequity_aversion"
        ia_alpha = 5.0
        ia_beta = 0.05

        [optim]
        rollout_length = 8
        """,
}

# 2 games x 48 steps per seed: 6 iterations of 8 steps, episodes of 10 steps
TINY = Preset("tiny", total_steps=96, num_envs=2, horizon=10, checkpoint_seconds=0.0)


@pytest.fixture
def tiny_preset(monkeypatch):
    monkeypatch.setitem(PRESETS, "tiny", TINY)
    return "tiny"


def write_toml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def metrics(run: Path) -> pd.DataFrame:
    return pd.read_parquet(run / "metrics.parquet").drop(columns="wall_time")


def checkpoint(run: Path) -> dict:
    return load_checkpoint(run / "checkpoint.pt")


def assert_same_weights(a: dict, b: dict) -> None:
    assert a["net"].keys() == b["net"].keys()
    for name in a["net"]:
        assert torch.equal(a["net"][name], b["net"][name]), name


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_resume_equals_uninterrupted_run(tmp_path, tiny_preset, name):
    config = write_toml(tmp_path / f"{name}.toml", TINY_CONFIGS[name])
    seeds = [0, 3]
    full = train(str(config), tiny_preset, seeds, "cpu", tmp_path / "full", progress=False)
    assert (full / "done").is_file()
    expected = metrics(full)
    assert sorted(expected["seed"].unique()) == seeds
    assert (expected.groupby("seed").size() == 4).all()  # 48 steps, episodes of 10

    part = tmp_path / "part"
    train(str(config), tiny_preset, seeds, "cpu", part, progress=False, max_iterations=3)  # stops mid-episode
    assert not (part / "done").exists()
    assert checkpoint(part)["env_steps"] == 3 * 2 * 8
    assert len(metrics(part)) < len(expected)
    train(str(config), tiny_preset, seeds, "cpu", part, progress=False)
    assert (part / "done").is_file()
    pd.testing.assert_frame_equal(metrics(part), expected)
    assert_same_weights(checkpoint(part), checkpoint(full))
    # runs of different seeds differ (so the comparisons above are not vacuous)
    by_seed = expected.set_index(["seed", "episode"]).drop(columns="env_steps")
    assert not by_seed.loc[0].equals(by_seed.loc[3])

    # a finished run is not retrained; a different config or seed list in the folder is an error
    train(str(config), tiny_preset, seeds, "cpu", part, progress=False)
    pd.testing.assert_frame_equal(metrics(part), expected)
    other = write_toml(tmp_path / "other.toml", TINY_CONFIGS[name].replace("rollout_length = 8", "rollout_length = 4"))
    with pytest.raises(ValueError, match="different config"):
        train(str(other), tiny_preset, seeds, "cpu", part, progress=False)
    with pytest.raises(ValueError, match="different config"):
        train(str(config), tiny_preset, [0, 4], "cpu", part, progress=False)
    # --restart discards the old run
    train(str(other), tiny_preset, seeds, "cpu", part, restart=True, progress=False, max_iterations=1)
    assert checkpoint(part)["env_steps"] == 2 * 4
    assert not (part / "done").exists()


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`python -m ssdlib.train` on the smoke preset, two seeds, in a fresh process."""
    tmp = tmp_path_factory.mktemp("cli")
    config = write_toml(tmp / "box_influence_test.toml", SMOKE_TOML)
    out = tmp / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "ssdlib.train", str(config), "--preset", "smoke", "--seeds", "0,1",
         "--device", "cpu", "--out", str(out), "--no-progress"],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    return config, out, result


def test_cli_writes_run_folder(cli_run):
    _, out, result = cli_run
    assert result.stdout.strip() == str(out)
    for name in ("config.json", "metrics.parquet", "checkpoint.pt", "provenance.json", "done"):
        assert (out / name).is_file(), name
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["seeds"] == [0, 1]
    assert resolved["config"]["name"] == "box_influence_test"
    assert resolved["preset"]["name"] == "smoke"
    provenance = json.loads((out / "provenance.json").read_text())
    assert {"git_commit", "torch", "device", "env_steps_per_seed", "wall_time_s", "env_steps_per_s"} <= set(provenance)
    assert provenance["env_steps_per_seed"] == get_preset("smoke").total_steps
    frame = pd.read_parquet(out / "metrics.parquet")
    smoke = get_preset("smoke")
    episodes = smoke.total_steps // smoke.num_envs // smoke.horizon
    assert sorted(frame["seed"].unique()) == [0, 1]
    assert (frame.groupby("seed")["episode"].apply(list) == [list(range(episodes))] * 2).all()
    for column in ("collective_reward", "equality", "collective_times_equality", "env_steps", "wall_time", "open_rate"):
        assert column in frame.columns, column
    for agent in (0, 1):
        for column in ("return", "influence", "apples", "fire", "hits", "clean", "cleaned"):
            assert f"{column}_{agent}" in frame.columns, f"{column}_{agent}"
    assert "return_2" not in frame.columns
    torch.testing.assert_close(
        torch.tensor(frame["collective_reward"].to_numpy()),
        torch.tensor((frame["return_0"] + frame["return_1"]).to_numpy()),
    )
    assert (frame["influence_1"] == 0).all()  # the trapped agent is an influencee without reward
    assert frame["influence_0"].notna().all()


def test_smoke_runs_are_deterministic(cli_run, tmp_path):
    """The CLI run and an in-process run of the same config and seeds are identical."""
    config, out, _ = cli_run
    again = train(str(config), "smoke", [0, 1], "cpu", tmp_path / "again", progress=False)
    pd.testing.assert_frame_equal(metrics(again), metrics(out))
    assert_same_weights(checkpoint(again), checkpoint(out))


def test_cli_rejects_bad_seeds(capsys):
    with pytest.raises(SystemExit) as error:
        main(["cleanup_a3c", "--seeds", "zero", "--no-progress"])
    assert "'zero'" in str(error.value.code)
    with pytest.raises(SystemExit) as error:
        main(["no_such_config", "--no-progress"])
    assert "no_such_config" in str(error.value.code)


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("1,3") == [1, 3]
    assert parse_seeds("5") == [5]
    assert parse_seeds("7-7") == [7]
    for bad in ("", "x", "1-", "3-1", "1,1", "-1", "0-2-4", "1.5", "1,,2"):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            parse_seeds(bad)


# ---------------------------------------------------------------------- every packaged config
def initial_weights(config_name: str, preset) -> dict:
    return {k: v.clone() for k, v in Trainer(load_config(config_name), preset, [0]).net.state_dict().items()}


@pytest.mark.parametrize("name", config_names())
def test_packaged_config_trains_one_iteration(tmp_path, name):
    config, smoke = load_config(name), get_preset("smoke")
    run = train(name, "smoke", [0], "cpu", tmp_path / name, progress=False, max_iterations=1)
    state = checkpoint(run)
    assert state["env_steps"] == smoke.num_envs * config.optim.rollout_length
    init = initial_weights(name, smoke)
    changed = 0
    for key, value in state["net"].items():
        assert torch.isfinite(value).all(), key
        changed += not torch.equal(value, init[key])
    assert changed >= len(init) - 2  # every weight learned (biases of silent heads may not)
    frame = pd.read_parquet(run / "metrics.parquet")
    if config.optim.rollout_length >= smoke.horizon:
        assert len(frame) == 1
        assert [f"return_{k}" for k in range(config.num_agents)] == [c for c in frame.columns if c.startswith("return_")]
        assert all(math.isfinite(x) for x in frame["collective_reward"])


@pytest.mark.parametrize("name", [n for n in config_names() if load_config(n).optim.algorithm == "a2c"])
def test_packaged_config_trains_with_ppo(name):
    """The same conditions with the reference code's PPO (fewer epochs, shorter rollout)."""
    config = load_config(name)
    optim = dataclasses.replace(config.optim, algorithm="ppo", ppo_epochs=2, ppo_minibatches=2, rollout_length=10)
    tr = Trainer(dataclasses.replace(config, optim=optim), get_preset("smoke"), [0])
    before = {k: v.clone() for k, v in tr.net.state_dict().items()}
    tr.train_iteration()
    assert tr.env_steps == 4 * 10
    for key, value in tr.net.state_dict().items():
        assert torch.isfinite(value).all(), key
    assert sum(not torch.equal(v, before[k]) for k, v in tr.net.state_dict().items()) >= len(before) - 2
