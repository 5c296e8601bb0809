"""Collecting through the captured acting step (`Trainer(capture=True)`, `CapturedStep`).

On the CPU the captured path runs eagerly through the same fixed buffers as on CUDA: its
rollouts must equal the plain trainer's bit for bit (so the acting step depends only on its
arguments, the parameters and the sampling generator), and its A2C update, which re-evaluates
the rollout, must move the weights as the plain one's kept graph does, to float tolerance.
"""

from dataclasses import replace

import pytest
import torch

from ssdlib.envs import make_env
from ssdlib.training.capture import CapturedEnv, CapturedStep
from ssdlib.training.conditions import get_preset, load_config
from ssdlib.training.trainer import Trainer


def pair(name: str, device: str = "cpu") -> tuple[Trainer, Trainer]:
    config = load_config(name)
    preset = replace(get_preset("smoke"), num_envs=3)
    return Trainer(config, preset, [0, 1], device), Trainer(config, preset, [0, 1], device, capture=True)


def assert_same_rollout(plain, captured) -> None:
    for field, want, got in zip(plain.steps._fields, plain.steps, captured.steps):
        if want is None:
            assert got is None, field
        else:
            assert torch.equal(want, got), field
    assert torch.equal(plain.last_value, captured.last_value)


@pytest.mark.parametrize("name", ["cleanup_a3c", "cleanup_influence", "harvest_moa_influence",
                                  "cleanup_comm_influence"])  # PPO acts as A2C does; its update never kept a graph
def test_captured_collect_equals_the_plain_collect_and_learns_alike(name):
    plain, captured = pair(name)
    assert captured.keeps_graph is False and plain.keeps_graph is (plain.config.optim.algorithm == "a2c")
    for _ in range(2):  # across an episode end of the smoke preset (100 steps), and after an update
        want, got = plain.collect(), captured.collect()
        assert_same_rollout(want, got)
        assert got.evaluation is None
        plain.update(want)
        captured.update(got)
        for (key, p), q in zip(plain.net.named_parameters(), captured.net.parameters()):
            torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6, msg=key)
        # the weights agree to float tolerance only: copy them, so the next rollouts compare exactly
        with torch.no_grad():
            for p, q in zip(plain.net.parameters(), captured.net.parameters()):
                q.copy_(p)
    assert plain.episodes == [] or len(plain.episodes) == len(captured.episodes)


def test_a_captured_step_refuses_arguments_of_another_shape():
    step = CapturedStep(lambda x: x * 2, [])
    assert torch.equal(step(torch.ones(3)), torch.full((3,), 2.0))
    with pytest.raises(ValueError, match="shapes and dtypes"):
        step(torch.ones(4))


def test_a_captured_step_returns_copies_not_its_buffers():
    step = CapturedStep(lambda x: (x + 1, None), [])
    first, _ = step(torch.zeros(2))
    step(torch.ones(2))
    assert torch.equal(first, torch.ones(2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["cleanup_a3c", "cleanup_influence"])
def test_captured_collect_on_cuda_matches_eager(name):
    plain, captured = pair(name, "cuda")
    for _ in range(2):
        want, got = plain.collect(), captured.collect()
        torch.testing.assert_close(got.steps.logp, want.steps.logp)
        assert (got.steps.actions == want.steps.actions).double().mean() > 0.99
        plain.update(want)
        captured.update(got)


@pytest.mark.parametrize("name", ["cleanup", "harvest", "box_trapped"])
def test_a_captured_env_steps_as_the_plain_env(name):
    """Through `CapturedEnv` (eagerly through its buffers on the CPU) the games step as the
    plain env's, bit for bit, over two and a half episodes: observations, rewards, done, event
    counts, state, step counter and the generator; the steps that reset run eagerly."""
    num_agents = 2 if name == "box_trapped" else 5
    plain = make_env(name, num_envs=4, num_agents=num_agents, seed=3, horizon=6)
    captured_env = make_env(name, num_envs=4, num_agents=num_agents, seed=3, horizon=6)
    plain.branch_on_host = False  # as the captured env, so that both take the same (exact) paths
    captured = CapturedEnv(captured_env)
    assert captured_env.branch_on_host is False
    gen = torch.Generator().manual_seed(0)
    for step in range(15):
        actions = torch.randint(0, plain.num_actions, (4, num_agents), generator=gen)
        want, got = plain.step(actions), captured.step(actions)
        for field, w, g in zip(want[0]._fields, want[0], got[0]):
            assert torch.equal(w, g), (step, field)
        assert torch.equal(want[1], got[1]) and torch.equal(want[2], got[2]), step
        assert want[3].keys() == got[3].keys() and all(torch.equal(want[3][k], got[3][k]) for k in want[3]), step
        for key, x in plain.state.by_name().items():
            y = captured_env.state.by_name()[key]
            assert (x is None and y is None) or torch.equal(x, y), (step, key)
        assert plain.t == captured_env.t
        assert torch.equal(plain._generator.get_state(), captured_env._generator.get_state())
    assert plain.t == 3  # two episode ends were stepped through


def test_only_grid_games_are_captured():
    with pytest.raises(ValueError, match="only grid games can be captured, not PhysicalDeception"):
        CapturedEnv(make_env("physical_deception", num_envs=2))
