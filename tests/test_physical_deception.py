"""Physical deception against mpe2's simple_adversary_v3: same state in, same numbers out.

mpe2's reset draws from its own RNG stream, so each comparison copies our state (positions,
velocities, target) into mpe2's world after a reset and then steps both with the same actions.
Our state is float64 like mpe2's and every operation is mpe2's, in its order: positions,
velocities and float32 observations are compared for exact equality. Rewards take a square
root, which torch's CPU kernel (MKL's vectorised sqrt in this build) does not always round
correctly, as numpy does: float64 rewards agree to 1e-14, the float32 rewards the env returns
to one float32 ulp.
"""

import json

import numpy as np
import pytest
import torch
from mpe2 import simple_adversary_v3
from pettingzoo.test import parallel_api_test

from ssdlib import bench
from ssdlib.envs import ENVIRONMENTS, make_env
from ssdlib.envs.physical_deception import ParticleState, PhysicalDeception, shaped_rewards
from ssdlib.envs.physical_deception_pettingzoo import PhysicalDeceptionParallelEnv


def mpe2_games(num_good: int, count: int) -> list:
    """`count` mpe2 parallel envs with default settings but N (reset once so they can step)."""
    games = [simple_adversary_v3.parallel_env(N=num_good) for _ in range(count)]
    for g, game in enumerate(games):
        game.reset(seed=g)
    return games


def copy_state(game, state: ParticleState, index: int) -> None:
    """Put game `index` of our state into mpe2's world (fresh arrays: mpe2 updates in place)."""
    world = game.unwrapped.world
    for k, agent in enumerate(world.agents):
        agent.state.p_pos = state.pos[index, k].cpu().numpy().copy()
        agent.state.p_vel = state.vel[index, k].cpu().numpy().copy()
        agent.goal_a = world.landmarks[int(state.goal[index])]
    for k, landmark in enumerate(world.landmarks):
        landmark.state.p_pos = state.landmarks[index, k].cpu().numpy().copy()


def mpe2_observations(game) -> dict[str, np.ndarray]:
    return {name: game.unwrapped.observe(name) for name in game.possible_agents}


def assert_same_observations(ours, theirs: dict[str, np.ndarray], names: list[str], index: int) -> None:
    for k, name in enumerate(names):
        mine = ours.agent(k)[index].cpu().numpy()
        assert mine.dtype == theirs[name].dtype == np.float32
        np.testing.assert_array_equal(mine, theirs[name], err_msg=f"{name} in game {index}")


@pytest.mark.parametrize("num_agents", [3, 4])
def test_two_episodes_match_mpe2_exactly(num_agents):
    """Random actions in 5 games for two episodes (the second after our own reset)."""
    b = 5
    env = PhysicalDeception(num_envs=b, num_agents=num_agents, seed=7)
    games = mpe2_games(num_agents - 1, b)
    names = games[0].possible_agents
    assert names == env.agent_names
    gen = torch.Generator().manual_seed(3)
    obs = env.reset()
    for episode in range(2):
        for g, game in enumerate(games):
            game.reset()
            copy_state(game, env.state, g)
            assert_same_observations(obs, mpe2_observations(game), names, g)
        for t in range(env.horizon):
            actions = torch.randint(0, env.num_actions, (b, num_agents), generator=gen)
            obs, rewards, done, info = env.step(actions)
            last = t == env.horizon - 1
            assert done.tolist() == [last] * b
            assert ("final_observation" in info) == last
            seen = info["final_observation"] if last else obs
            for g, game in enumerate(games):
                their_obs, their_rewards, terminations, truncations, _ = game.step(
                    {name: int(actions[g, k]) for k, name in enumerate(names)})
                assert_same_observations(seen, their_obs, names, g)
                expected = np.array([their_rewards[name] for name in names])
                np.testing.assert_array_max_ulp(rewards[g].numpy(), expected.astype(np.float32), maxulp=1)
                assert not any(terminations.values())
                assert list(truncations.values()) == [last] * num_agents
                if not last:  # before our reset: the float64 state, and rewards before the float32 cast
                    np.testing.assert_allclose(shaped_rewards(env.state)[g].numpy(), expected, rtol=0, atol=1e-14)
                    world = game.unwrapped.world
                    for k, agent in enumerate(world.agents):
                        assert env.state.pos[g, k].tolist() == agent.state.p_pos.tolist()
                        assert env.state.vel[g, k].tolist() == agent.state.p_vel.tolist()


def test_reset_distribution_matches_mpe2():
    """Target uniform over the landmarks; agents and landmarks uniform on [-1, 1)^2; at rest.
    Per coordinate, our samples and mpe2's pass a two-sample Kolmogorov-Smirnov check."""
    n_ours, n_theirs = 20000, 4000
    state = PhysicalDeception(num_envs=n_ours, seed=1).state
    game = simple_adversary_v3.raw_env()
    rng = np.random.default_rng(1)
    theirs_pos, theirs_landmarks, theirs_goal = [], [], []
    for _ in range(n_theirs):
        game.scenario.reset_world(game.world, rng)
        theirs_pos.append([a.state.p_pos for a in game.world.agents])
        theirs_landmarks.append([lm.state.p_pos for lm in game.world.landmarks])
        theirs_goal.append(game.world.landmarks.index(game.world.agents[0].goal_a))
        assert all(not a.state.p_vel.any() for a in game.world.agents)
    assert not state.vel.any()
    for ours, theirs in ((state.pos.numpy(), np.array(theirs_pos)), (state.landmarks.numpy(), np.array(theirs_landmarks))):
        assert ours.shape[1:] == theirs.shape[1:]
        for sample in (ours, theirs):
            assert sample.min() >= -1.0 and sample.max() < 1.0
            assert sample.min() < -0.999 and sample.max() > 0.999
        for entity in range(ours.shape[1]):
            for axis in range(2):
                a, b = np.sort(ours[:, entity, axis]), np.sort(theirs[:, entity, axis])
                grid = np.concatenate([a, b])
                ks = np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b)).max()
                assert ks < 0.035, (entity, axis, ks)  # the 0.1% critical value is about 0.031
    ours_share = state.goal.float().mean().item()
    theirs_share = float(np.mean(theirs_goal))
    assert abs(ours_share - 0.5) < 0.015 and abs(theirs_share - 0.5) < 0.03


def test_rewards_and_layout_by_hand():
    """One hand-made game: the target is landmark 1; agent_0 sits on it."""
    env = PhysicalDeception(num_envs=1)
    env.state = ParticleState(
        pos=torch.tensor([[[0.0, 0.0], [1.0, 1.0], [3.0, 0.0]]], dtype=torch.float64),
        vel=torch.zeros(1, 3, 2, dtype=torch.float64),
        landmarks=torch.tensor([[[-1.0, 0.0], [1.0, 1.0]]], dtype=torch.float64),
        goal=torch.tensor([1]),
    )
    obs, rewards, _, _ = env.step(torch.tensor([[2, 0, 0]]))  # the adversary pushes right: v = 0.5, x unchanged
    adversary_to_goal = np.sqrt(2.0)
    np.testing.assert_allclose(rewards[0].numpy(), [-adversary_to_goal, adversary_to_goal, adversary_to_goal], rtol=1e-7)
    assert obs.adversary[0].tolist() == [-1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 3.0, 0.0]
    assert obs.good[0, 0].tolist() == [0.0, 0.0, -2.0, -1.0, 0.0, 0.0, -1.0, -1.0, 2.0, -1.0]
    assert env.state.vel[0, 0].tolist() == [0.5, 0.0]
    env.step(torch.tensor([[0, 0, 0]]))  # moves by 0.5 * 0.1, then slows to 0.375
    assert env.state.pos[0, 0].tolist() == [0.05, 0.0] and env.state.vel[0, 0].tolist() == [0.375, 0.0]


@pytest.mark.parametrize(
    "actions, words",
    [
        (torch.tensor([[0, 1, 2], [3, 5, 0]]), "action 5 of agent 1 in game 1 is outside the action space 0..4"),
        (torch.tensor([[0, -1, 2], [3, 4, 0]]), "action -1 of agent 1 in game 0"),
        (torch.zeros(2, 3), "integer dtype, got torch.float32"),
        (torch.zeros(2, 2, dtype=torch.long), r"shape \(2, 3\), got \(2, 2\)"),
        ([[0, 0, 0], [0, 0, 0]], "torch.Tensor of shape"),
    ],
)
def test_bad_actions_name_the_bad_value(actions, words):
    env = make_env("physical_deception", num_envs=2)
    with pytest.raises(ValueError, match=words):
        env.step(actions)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"num_agents": 1}, "num_agents must be an int >= 2 .* got 1"),
        ({"num_envs": 0}, "num_envs must be a positive int, got 0"),
        ({"horizon": 0}, "horizon must be a positive int, got 0"),
        ({"map": "x"}, r"unknown option\(s\) \['map'\] for physical_deception"),
    ],
)
def test_bad_settings_name_the_bad_value(kwargs, words):
    with pytest.raises(ValueError, match=words):
        make_env("physical_deception", **kwargs)


def test_registered_beside_the_grid_games():
    env = make_env("physical_deception", num_envs=2, seed=4, horizon=5)
    assert isinstance(env, PhysicalDeception)
    assert (env.num_agents, env.horizon, env.num_actions) == (3, 5, 5)
    assert "physical_deception" not in ENVIRONMENTS  # code iterating over grid games is unaffected
    again = make_env("physical_deception", num_envs=2, seed=4, horizon=5)
    assert torch.equal(env.state.pos, again.state.pos) and torch.equal(env.state.goal, again.state.goal)
    assert env.state_bytes_per_game() == (2 * 3 * 2 + 2 * 2) * 8 + 8


def test_pettingzoo_parallel_api():
    parallel_api_test(PhysicalDeceptionParallelEnv(seed=1), num_cycles=60)


def test_pettingzoo_adapter_is_game_0_of_the_batched_env():
    adapter = PhysicalDeceptionParallelEnv(seed=2)
    batched = PhysicalDeception(num_envs=1, seed=2)
    obs, _ = adapter.reset(seed=5)
    mine = batched.reset(seed=5)
    assert [o.shape for o in obs.values()] == [(8,), (10,), (10,)]
    assert adapter.state().shape == (28,)
    for t in range(25):
        actions = {name: (t + k) % 5 for k, name in enumerate(adapter.agents)}
        obs, rewards, terminations, truncations, _ = adapter.step(actions)
        mine, my_rewards, _, info = batched.step(torch.tensor([list(actions.values())]))
        mine = info.get("final_observation", mine)
        for k, name in enumerate(adapter.possible_agents):
            assert np.array_equal(obs[name], mine.agent(k)[0].numpy())
            assert rewards[name] == my_rewards[0, k].item()
        assert all(truncations.values()) == (t == 24) and not any(terminations.values())
    assert adapter.agents == []
    assert np.array_equal(adapter.state(), mine.state()[0].numpy())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_exactly():
    cpu = PhysicalDeception(num_envs=64, seed=9)
    gpu = PhysicalDeception(num_envs=64, seed=9, device="cuda")
    gpu.state = ParticleState(*(t.cuda() for t in cpu.state.tensors()))
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        actions = torch.randint(0, 5, (64, 3), generator=gen)
        obs_c, rew_c, done_c, _ = cpu.step(actions)
        obs_g, rew_g, done_g, _ = gpu.step(actions.cuda())
        if done_c[0]:
            gpu.state = ParticleState(*(t.cuda() for t in cpu.state.tensors()))
            obs_g = gpu.observe()
        assert torch.equal(done_c, done_g.cpu())
        torch.testing.assert_close(rew_c, rew_g.cpu(), rtol=0, atol=1e-6)  # CPU sqrt: see the docstring
        assert torch.equal(obs_c.state(), obs_g.state().cpu())


def test_bench_env_compares_with_mpe2(capsys):
    bench.main(["env", "--env", "physical_deception", "--sweep", "1,4", "--steps", "3", "--baseline-steps", "3"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["num_envs"] for r in rows] == [1, 4]
    for row in rows:
        assert row["env"] == "physical_deception" and row["num_agents"] == 3 and row["mpe2_version"] == "1.1.1"
        assert row["mpe2_env_steps_per_s"] > 0 and row["env_steps_per_s"] > 0
        assert row["ratio_vs_mpe2"] == pytest.approx(row["env_steps_per_s"] / row["mpe2_env_steps_per_s"], rel=0.01)
        assert row["obs_bytes_per_game"] == 4 * (8 + 2 * 10) and row["state_bytes_per_game"] == 136
        assert row["device_name"] and row["torch"]
