"""Figure 10's scripted policies and the Schelling-diagram experiment (ssdlib.experiments.schelling).

The policies are checked for what their names claim (cleaners clean, sustainable harvesters
spare apples, defectors deplete the orchard faster, nobody fires the penalty beam, every
action is legal), and the tables for their shape and their confidence intervals. Horizons and
batches are small so the file runs in seconds.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from ssdlib.envs import make_env
from ssdlib.envs.geometry import CLEAN, FIRE, FORWARD, STAY, move_table
from ssdlib.experiments import schelling as sch


def _play(env, policy, steps: int) -> dict[str, torch.Tensor]:
    """`steps` steps of `policy` in `env`; returns summed rewards and per-agent event counts."""
    totals = {"returns": torch.zeros(env.num_envs, env.num_agents)}
    for _ in range(steps):
        _, rewards, _, info = env.step(policy.act())
        totals["returns"] += rewards
        for key in ("apples", "fire", "clean", "cleaned"):
            totals[key] = totals.get(key, 0) + info[key]
    return totals


def _all(env, cooperate: bool) -> torch.Tensor:
    return torch.full((env.num_envs, env.num_agents), cooperate)


# ---------------------------------------------------------------------------- geometry
def test_distance_fields_walk_around_obstacles_and_mark_the_unreachable() -> None:
    passable = torch.tensor([
        [0, 0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 0, 1],
        [0, 1, 0, 0, 1, 0, 0],
        [0, 1, 1, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ], dtype=torch.bool)
    targets = torch.zeros_like(passable)
    targets[3, 1] = True
    dist = sch.distance_fields(targets[None], passable[None])[0]
    assert dist[3, 1] == 0 and dist[3, 2] == 1 and dist[2, 1] == 1
    assert dist[1, 4] == 5 and dist[3, 4] == 7  # round the wall at (2, 2)-(3, 3)
    assert torch.isinf(dist[1, 6]), "a cell cut off from every target is unreachable"
    assert torch.isinf(dist[~passable]).all()
    no_targets = sch.distance_fields(torch.zeros_like(targets)[None], passable[None])
    assert torch.isinf(no_targets).all()


def test_move_actions_invert_the_egocentric_move_table() -> None:
    for num_actions in (8, 9):
        actions = sch.move_actions(num_actions)
        table = move_table(num_actions)
        for facing in range(4):
            for direction in range(4):
                assert torch.equal(table[facing, actions[facing, direction]], FORWARD[direction])


def test_cooperator_mask_counts_and_random_slots() -> None:
    mask = sch.cooperator_mask(6 * 50, 5, 50, torch.Generator().manual_seed(0))
    assert torch.equal(mask.sum(1), torch.arange(6).repeat_interleave(50))
    one = mask[50:100]  # the games with one cooperator: every slot gets it in some game
    assert (one.sum(0) > 0).all()


# ---------------------------------------------------------------------------- the policies
def test_cleaners_remove_waste_where_a_no_op_policy_leaves_it() -> None:
    steps = 60
    still = make_env("cleanup", num_envs=4, seed=1)
    for _ in range(steps):
        still.step(torch.full((4, 5), STAY))
    env = make_env("cleanup", num_envs=4, seed=1)
    cooperators = torch.tensor([[True] * 5, [True] * 5, [True, False, True, False, True], [True, False, False, False, False]])
    totals = _play(env, sch.ScriptedPolicy(env, cooperators, seed=1), steps)
    assert (still.num_waste() == 56).all()
    assert (env.num_waste() < still.num_waste()).all()
    assert (env.num_waste()[:3] < 40).all(), "three or more cleaners halve the waste or better"
    assert (totals["cleaned"][cooperators] > 0).all()
    assert (totals["clean"][~cooperators] == 0).all(), "defectors never use the cleaning beam"


def test_cooperators_in_cleanup_go_harvesting_once_the_river_is_clean() -> None:
    env = make_env("cleanup", num_envs=2, seed=2)
    policy = sch.ScriptedPolicy(env, _all(env, True), seed=2)
    totals = _play(env, policy, 300)
    assert (totals["apples"].sum(1) > 0).all()
    assert (env.waste_density() < sch.CLEAN_FROM + 0.05).all()


def test_greedy_defectors_deplete_harvest_faster_than_sustainable_harvesters() -> None:
    steps = 150
    greedy = make_env("harvest", num_envs=4, seed=3)
    _play(greedy, sch.ScriptedPolicy(greedy, _all(greedy, False), seed=3), steps)
    sustainable = make_env("harvest", num_envs=4, seed=3)
    _play(sustainable, sch.ScriptedPolicy(sustainable, _all(sustainable, True), seed=3), steps)
    assert greedy.num_apples().float().mean() < 0.7 * sustainable.num_apples().float().mean()


def test_sustainable_harvesters_eat_only_apples_that_keep_neighbours() -> None:
    env = make_env("harvest", num_envs=4, seed=4)
    policy = sch.ScriptedPolicy(env, _all(env, True), seed=4)
    eaten = 0
    for _ in range(120):
        allowed = policy.sustainable_apples(env.state.apples)
        _, _, _, info = env.step(policy.act())
        ate = info["apples"].bool()
        assert allowed.gather(1, env.state.pos)[ate].all(), "a cooperator ate an apple it should spare"
        eaten += int(ate.sum())
    assert eaten > 0


@pytest.mark.parametrize("game", sch.GAMES)
def test_policies_act_with_legal_actions_and_never_fire(game: str) -> None:
    env = make_env(game, num_envs=6, seed=5)
    cooperators = sch.cooperator_mask(6, 5, 1, torch.Generator().manual_seed(5))
    policy = sch.ScriptedPolicy(env, cooperators, seed=5)
    for _ in range(80):
        actions = policy.act()
        assert actions.dtype == torch.long and actions.shape == (6, 5)
        assert ((actions >= 0) & (actions < env.num_actions)).all()
        assert not (actions == FIRE).any(), "nobody uses the penalty beam"
        assert not (actions[~cooperators] == CLEAN).any()
        env.step(actions)


def test_policy_names_bad_arguments() -> None:
    env = make_env("harvest", num_envs=2)
    with pytest.raises(ValueError, match="bool tensor of shape \\(2, 5\\)"):
        sch.ScriptedPolicy(env, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="clean_until=0.3"):
        sch.ScriptedPolicy(env, _all(env, True), clean_until=0.3, clean_from=0.2)
    with pytest.raises(ValueError, match="-1"):
        sch.ScriptedPolicy(env, _all(env, True), sustainable_neighbours=-1)
    with pytest.raises(ValueError, match="'box_trapped'"):
        box = make_env("box_trapped", num_envs=1)
        sch.ScriptedPolicy(box, torch.ones(1, 2, dtype=torch.bool))


# ---------------------------------------------------------------------------- the tables
@pytest.mark.parametrize("game", sch.GAMES)
def test_schelling_table_shape_and_intervals(game: str) -> None:
    per_game = sch.play_mixes(game, games=3, seed=0, horizon=40)
    assert len(per_game) == 6 * 3 and list(per_game.cooperators) == list(np.repeat(range(6), 3))
    table = sch.role_table(per_game)
    assert tuple(table.columns) == sch.COLUMNS
    assert list(table.cooperators_others) == list(np.repeat(range(5), 2))
    assert list(table.role) == ["cooperator", "defector"] * 5
    assert (table.game == game).all() and (table.games == 3).all()
    assert (table.ci_low <= table.mean_return).all() and (table.mean_return <= table.ci_high).all()
    row = table[(table.cooperators_others == 2) & (table.role == "cooperator")].iloc[0]
    assert row.mean_return == pytest.approx(per_game[per_game.cooperators == 3].cooperator_return.mean())
    averages = sch.average_table(per_game)
    assert list(averages.cooperators) == list(range(6)) and (averages.games == 3).all()
    assert (averages.ci_low <= averages.mean_return).all() and (averages.mean_return <= averages.ci_high).all()
    assert sch.schelling_table(game, games=3, seed=0, horizon=40).equals(table)


def test_mean_ci_is_a_student_t_interval() -> None:
    mean, low, high = sch.mean_ci(np.array([1.0, 2.0, 3.0, 4.0]), confidence=0.95)
    assert mean == 2.5 and high - mean == pytest.approx(3.182446 * math.sqrt(5 / 3) / 2, rel=1e-5)
    assert mean - low == pytest.approx(high - mean)
    with pytest.raises(ValueError, match="needs >= 2 values"):
        sch.mean_ci(np.array([1.0]))


def _table(cooperator: list[float], defector: list[float]) -> pd.DataFrame:
    rows = [("g", x, role, v, v - 0.4, v + 0.4, 2)
            for x in range(5) for role, v in (("cooperator", cooperator[x]), ("defector", defector[x]))]
    return pd.DataFrame(rows, columns=list(sch.COLUMNS))


def test_dilemma_criteria_from_a_diagram() -> None:
    dilemma = sch.dilemma_criteria(_table([1, 2, 3, 4, 5], [2, 3, 4, 5, 6]))
    assert dilemma.holds.all() and dilemma.clear.all()
    assert sch.is_social_dilemma(dilemma, "g") == {"hughes": True, "strict": True}
    # defection stops paying once everyone else cooperates: no greed, and not at every x
    no_greed = sch.dilemma_criteria(_table([0, 1, 2, 3, 9], [1, 2, 3, 4, 5])).set_index("criterion")
    assert not no_greed.loc["greed", "holds"] and not no_greed.loc["defection pays at every x", "holds"]
    assert no_greed.loc["fear", "holds"] and no_greed.loc["fear", "values"] == "1.0 vs 0.0"
    verdict = sch.is_social_dilemma(no_greed.reset_index(), "g")
    assert verdict == {"hughes": True, "strict": False}
    close = sch.dilemma_criteria(_table([1, 2, 3, 4, 5], [1.5, 2.5, 3.5, 4.5, 5.5])).set_index("criterion")
    assert close.loc["greed", "holds"] and not close.loc["greed", "clear"]  # the intervals overlap
    with pytest.raises(ValueError, match="'nope'"):
        sch.is_social_dilemma(dilemma, "nope")


def test_play_mixes_names_bad_arguments() -> None:
    with pytest.raises(ValueError, match="'box_trapped'"):
        sch.play_mixes("box_trapped")
    with pytest.raises(ValueError, match="got 1"):
        sch.play_mixes("harvest", games=1)


def test_command_writes_the_table(tmp_path) -> None:
    out = tmp_path / "schelling.csv"
    sch.main(["harvest", "--games", "2", "--horizon", "20", "--out", str(out)])
    table = pd.read_csv(out, index_col=0)
    assert tuple(table.columns) == sch.COLUMNS and len(table) == 10
    with pytest.raises(SystemExit):
        sch.main(["chess"])
