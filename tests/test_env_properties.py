"""Property-based random play, determinism and input validation (spec sections 2, 3, 4, 5, 9)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssdlib.envs import make_env
from ssdlib.envs.geometry import CLEAN, FIRE, MOVE_DOWN, TURN_CCW, TURN_CW

fast = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])




def cell_mask(env, chars: str) -> torch.Tensor:
    return torch.from_numpy(env.map.mask(chars).ravel())


# ---------------------------------------------------------------------------- random play
@fast
@given(
    seed=st.integers(0, 2**31 - 1),
    game=st.sampled_from(["cleanup", "harvest"]),
    num_agents=st.integers(1, 9),
    neighbourhood=st.sampled_from(["square", "disc"]),
    beam_bias=st.floats(0.0, 0.6),
)
def test_random_play_invariants(seed: int, game: str, num_agents: int, neighbourhood: str, beam_bias: float) -> None:
    b = 3
    options = {"neighbourhood": neighbourhood} if game == "harvest" else {}
    env = make_env(game, num_envs=b, num_agents=num_agents, seed=seed, **options)
    obs = env.reset()
    hw = env.height * env.width
    wall = cell_mask(env, "@")
    apple_cells = cell_mask(env, "A" if game == "harvest" else "B")
    river = cell_mask(env, "HR")
    gen = torch.Generator().manual_seed(seed)
    num_actions = env.num_actions
    beams = [FIRE, CLEAN] if game == "cleanup" else [FIRE]
    for _ in range(25):
        actions = torch.randint(0, num_actions, (b, num_agents), generator=gen)
        # bias towards beams so that hits and cleaning happen often
        beam_pick = torch.tensor(beams)[torch.randint(0, len(beams), (b, num_agents), generator=gen)]
        use_beam = torch.rand(b, num_agents, generator=gen) < beam_bias
        actions = torch.where(use_beam, beam_pick, actions)
        pos0, orient0 = env.state.pos.clone(), env.state.orient.clone()
        apples0, waste0 = env.num_apples().clone(), env.num_waste().clone()

        obs, rewards, done, info = env.step(actions)
        s = env.state

        # two agents never share a cell, nobody stands in a wall, moves are single cells
        same = (s.pos[:, :, None] == s.pos[:, None, :]) & ~torch.eye(num_agents, dtype=torch.bool)
        assert not same.any()
        assert not wall[s.pos].any()
        step = s.pos - pos0
        assert torch.isin(step, torch.tensor([0, 1, -1, env.width, -env.width])).all()
        assert not (step != 0)[actions > MOVE_DOWN].any()
        turn = (actions == TURN_CW).long() - (actions == TURN_CCW).long()
        assert torch.equal(s.orient, (orient0 + turn) % 4)

        # apples only on apple cells, waste only on river cells
        assert not s.apples[:, :hw][:, ~apple_cells].any()
        assert not s.waste[:, :hw][:, ~river].any()

        # rewards are exactly the event counts weighted by the spec's table
        assert torch.equal(rewards, (info["apples"] - info["fire"] - 50 * info["hits"]).float())
        assert torch.equal(info["fire"], (actions == FIRE).long())
        assert torch.equal(info["clean"], ((actions == CLEAN) & (game == "cleanup")).long())
        firers = info["fire"].sum(1)
        assert (info["hits"].sum(1) <= 3 * firers).all()
        assert (info["cleaned"] <= 3 * info["clean"]).all()
        assert (info["apples"] <= 1).all() and (info["apples"] >= 0).all()
        # apples: only eating removes them; waste: cleaning removes, at most one new per step
        assert (env.num_apples() >= apples0 - info["apples"].sum(1)).all()
        after_beams = waste0 - info["cleaned"].sum(1)
        assert ((env.num_waste() == after_beams) | (env.num_waste() == after_beams + 1)).all()
        assert not done.any()
        if num_agents > 1:
            others = torch.tensor([[j for j in range(num_agents) if j != i] for i in range(num_agents)])
            assert torch.equal(obs.actions, actions[:, others])


# ---------------------------------------------------------------------------- determinism
def trajectory(name: str, seed: int, steps: int = 30, num_envs: int = 3, **kw) -> list[torch.Tensor]:
    env = make_env(name, num_envs=num_envs, seed=seed, **kw)
    obs = env.reset()
    out = [obs.image.clone(), obs.actions.clone(), obs.visible.clone()]
    out += [t.clone() for t in env.state.tensors()]
    gen = torch.Generator().manual_seed(1234)  # the same actions for every env seed
    for _ in range(steps):
        actions = torch.randint(0, env.num_actions, (num_envs, env.num_agents), generator=gen)
        obs, rewards, done, info = env.step(actions)
        out += [obs.image.clone(), obs.actions.clone(), obs.visible.clone(), rewards.clone(), done.clone()]
        out += [info[k].clone() for k in sorted(info)]
        out += [t.clone() for t in env.state.tensors()]
    return out


def same_trajectory(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("name", ["cleanup", "harvest", "box_trapped"])
def test_same_seed_same_trajectory_bit_for_bit(name: str) -> None:
    a = trajectory(name, seed=7)
    b = trajectory(name, seed=7)
    assert same_trajectory(a, b)
    c = trajectory(name, seed=8)
    assert not same_trajectory(a, c)


@fast
@given(seed=st.integers(0, 2**31 - 1), other=st.integers(1, 1000))
def test_determinism_property(seed: int, other: int) -> None:
    a = trajectory("cleanup", seed, steps=8, num_envs=2, num_agents=5)
    assert same_trajectory(a, trajectory("cleanup", seed, steps=8, num_envs=2, num_agents=5))
    assert not same_trajectory(a, trajectory("cleanup", seed + other, steps=8, num_envs=2, num_agents=5))


def test_reset_with_seed_replays() -> None:
    env = make_env("harvest", num_envs=2, seed=0)
    first = env.reset(seed=42)
    gen = torch.Generator().manual_seed(0)
    acts = [torch.randint(0, 8, (2, 5), generator=gen) for _ in range(10)]
    rewards_a = [env.step(a)[1] for a in acts]
    state_a = [t.clone() for t in env.state.tensors()]
    again = env.reset(seed=42)
    assert torch.equal(first.image, again.image)
    rewards_b = [env.step(a)[1] for a in acts]
    assert all(torch.equal(x, y) for x, y in zip(rewards_a, rewards_b))
    assert all(torch.equal(x, y) for x, y in zip(state_a, env.state.tensors()))


def test_games_in_a_batch_are_independent_draws() -> None:
    env = make_env("cleanup", num_envs=8, seed=0)
    env.reset()
    assert len({tuple(p) for p in env.state.pos.tolist()}) > 1


# ---------------------------------------------------------------------------- bad input
def env_for(name: str, **kw):
    env = make_env(name, num_envs=2, seed=0, **kw)
    env.reset()
    return env


@fast
@given(
    name=st.sampled_from(["cleanup", "harvest", "box_trapped"]),
    bad=st.one_of(st.integers(-10**6, -1), st.integers(9, 10**6)),
    game=st.integers(0, 1),
    agent=st.integers(0, 1),
)
def test_out_of_range_action_is_an_error(name: str, bad: int, game: int, agent: int) -> None:
    env = env_for(name)
    actions = torch.zeros(2, env.num_agents, dtype=torch.long)
    actions[game, agent] = bad
    before = [t.clone() for t in env.state.tensors()]
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        env.step(actions)
    assert all(torch.equal(x, y) for x, y in zip(before, env.state.tensors())), "no partial step"


@pytest.mark.parametrize("name, bad", [("cleanup", 9), ("harvest", 8), ("box_trapped", 8), ("harvest", -1)])
def test_first_action_outside_each_action_space(name: str, bad: int) -> None:
    env = env_for(name)
    actions = torch.zeros(2, env.num_agents, dtype=torch.long)
    actions[1, 1] = bad
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        env.step(actions)
    actions[1, 1] = env.num_actions - 1  # the largest legal action is fine
    env.step(actions)


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8])
def test_integer_dtypes_accepted(dtype: torch.dtype) -> None:
    env = env_for("cleanup")
    env.step(torch.full((2, 5), 4, dtype=dtype))


def test_wrong_shape_is_an_error() -> None:
    env = env_for("cleanup")
    for shape in [(2, 6), (2,), (3, 5), (2, 5, 1)]:
        with pytest.raises(ValueError, match=re.escape(str(shape))):
            env.step(torch.zeros(shape, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bool])
def test_non_integer_dtype_is_an_error(dtype: torch.dtype) -> None:
    env = env_for("harvest")
    with pytest.raises(ValueError, match=str(dtype).replace("torch.", "")):
        env.step(torch.zeros(2, 5, dtype=dtype))


@pytest.mark.parametrize("value", [[[4] * 5] * 2, np.full((2, 5), 4), 4, None])
def test_non_tensor_actions_are_an_error(value) -> None:
    env = env_for("harvest")
    with pytest.raises(ValueError, match=type(value).__name__):
        env.step(value)


def test_unknown_env_name() -> None:
    with pytest.raises(ValueError, match="chess"):
        make_env("chess")


def test_unknown_option() -> None:
    with pytest.raises(ValueError, match="colour"):
        make_env("cleanup", colour="red")
    with pytest.raises(ValueError, match="neighbourhood"):
        make_env("cleanup", neighbourhood="disc")  # a Harvest-only option


@pytest.mark.parametrize("n", [10, 12])
def test_too_many_agents(n: int) -> None:
    with pytest.raises(ValueError, match=str(n)):
        make_env("cleanup", num_agents=n)
    with pytest.raises(ValueError, match=str(n)):
        make_env("harvest", num_agents=n)


def test_default_agents_and_action_spaces() -> None:
    assert make_env("cleanup").num_agents == 5 and make_env("cleanup").num_actions == 9
    assert make_env("harvest").num_agents == 5 and make_env("harvest").num_actions == 8
    assert make_env("box_trapped").num_agents == 2 and make_env("box_trapped").num_actions == 8


def test_nine_agents_work() -> None:
    env = make_env("cleanup", num_envs=2, num_agents=9, seed=0)
    obs = env.reset()
    obs, rewards, _, _ = env.step(torch.randint(0, 9, (2, 9)))
    assert rewards.shape == (2, 9) and obs.actions.shape == (2, 9, 8)


def test_more_agents_than_spawn_points() -> None:
    two_spawns = "@@@@@@\n@P   @\n@  A @\n@   P@\n@@@@@@\n"
    make_env("harvest", num_agents=2, map=two_spawns)  # exactly enough
    with pytest.raises(ValueError, match="3"):
        make_env("harvest", num_agents=3, map=two_spawns)
    with pytest.raises(ValueError, match="spawn"):
        make_env("harvest", num_agents=3, map=two_spawns)


@pytest.mark.parametrize("num_envs", [0, -3])
def test_bad_num_envs(num_envs: int) -> None:
    for name in ("cleanup", "harvest", "box_trapped"):
        with pytest.raises(ValueError, match=re.escape(str(num_envs))):
            make_env(name, num_envs=num_envs)


def test_bad_num_agents_and_horizon() -> None:
    with pytest.raises(ValueError, match="0"):
        make_env("harvest", num_agents=0)
    with pytest.raises(ValueError, match="3"):
        make_env("box_trapped", num_agents=3)
    with pytest.raises(ValueError, match="-5"):
        make_env("cleanup", horizon=-5)


def test_unknown_neighbourhood() -> None:
    with pytest.raises(ValueError, match="hexagonal"):
        make_env("harvest", neighbourhood="hexagonal")


def test_unknown_map_name() -> None:
    with pytest.raises(ValueError, match="atlantis"):
        make_env("harvest", map="atlantis")


def test_bad_literal_maps() -> None:
    with pytest.raises(ValueError, match="X"):
        make_env("harvest", num_agents=1, map="@@@@\n@PX@\n@@@@\n")
    with pytest.raises(ValueError, match="wall"):
        make_env("harvest", num_agents=1, map="@@@@\n@PP \n@@@@\n")
