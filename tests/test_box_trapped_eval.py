"""Box Trapped evaluation (Figures 12 and 13): rollouts of trained openers, per step."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from ssdlib.envs.geometry import OPEN
from ssdlib.experiments import box_trapped as bt
from ssdlib.train import train
from ssdlib.training.conditions.config import load_config
from ssdlib.training.conditions.presets import get_preset
from ssdlib.training.trainer import Trainer

SEEDS = [0, 1]
TRAJECTORIES = 8
HORIZON = 100  # smoke preset


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Smoke runs of both conditions, stopped after one iteration (leaving a checkpoint)."""
    root = tmp_path_factory.mktemp("box_trapped")
    return {name: train(name, "smoke", SEEDS, "cpu", root / name, progress=False, max_iterations=1)
            for name in ("box_trapped_influence", "box_trapped_a3c")}


@pytest.fixture(scope="module")
def evaluations(runs):
    return {name: bt.evaluate_openers(bt.load_trainer(run), TRAJECTORIES, seed=3) for name, run in runs.items()}


@pytest.mark.parametrize("name", ["box_trapped_influence", "box_trapped_a3c"])
def test_shape_and_columns(evaluations, name):
    df = evaluations[name]
    assert list(df.columns) == list(bt.COLUMNS)
    assert len(df) == len(SEEDS) * TRAJECTORIES * HORIZON
    assert sorted(df["seed"].unique()) == SEEDS
    assert not df.duplicated(["seed", "trajectory", "step"]).any()
    counts = df.groupby(["seed", "trajectory"])["step"].agg(["min", "max", "count"])
    assert (counts["min"] == 0).all() and (counts["max"] == HORIZON - 1).all() and (counts["count"] == HORIZON).all()
    for column in ("open_action", "opened", "box_was_open"):
        assert df[column].dtype == bool
    assert set(np.unique(df[["reward_0", "reward_1"]].to_numpy())) <= {0.0, 1.0}


@pytest.mark.parametrize("name", ["box_trapped_influence", "box_trapped_a3c"])
def test_opened_is_consistent_with_actions_and_box_state(evaluations, name):
    df = evaluations[name].sort_values(["seed", "trajectory", "step"])
    # env info "open" = OPEN chosen while the box was still closed
    assert (df["opened"] == (df["open_action"] & ~df["box_was_open"])).all()
    per_trajectory = df.groupby(["seed", "trajectory"])
    assert (per_trajectory["opened"].sum() <= 1).all()
    # the box stays open after its opening step, and was closed before it
    expected_open = per_trajectory["opened"].cumsum() - df["opened"] > 0
    assert (df["box_was_open"] == expected_open).all()
    first_open_action = df[df["open_action"]].groupby(["seed", "trajectory"])["step"].min()
    open_step = df[df["opened"]].set_index(["seed", "trajectory"])["step"]
    pd.testing.assert_series_equal(open_step.sort_index(), first_open_action.sort_index(), check_names=False)


def test_influence_nan_for_a3c_and_nonnegative_kl_for_influence(evaluations):
    assert evaluations["box_trapped_a3c"]["influence"].isna().all()
    influence = evaluations["box_trapped_influence"]["influence"]
    assert np.isfinite(influence).all()
    assert (influence >= -1e-6).all()  # KL >= 0 up to float32 rounding
    assert influence.max() > 0


@pytest.mark.parametrize("name", ["box_trapped_influence", "box_trapped_a3c"])
def test_summaries(evaluations, name):
    df = evaluations[name]
    fraction = bt.open_fraction(df)
    assert list(fraction.index) == SEEDS
    assert ((fraction >= 0) & (fraction <= 1)).all()
    for seed in SEEDS:
        opened_trajectories = df[(df["seed"] == seed) & df["opened"]]["trajectory"].nunique()
        assert math.isclose(fraction[seed], opened_trajectories / TRAJECTORIES)
    rate = bt.open_rate_per_step(df)
    assert list(rate.columns) == ["seed", "step", "opens", "open_actions", "trajectories"]
    assert len(rate) == len(SEEDS) * HORIZON
    assert (rate["trajectories"] == TRAJECTORIES).all()
    assert (rate["opens"] <= rate["open_actions"]).all()
    assert rate.groupby("seed")["opens"].sum().tolist() == [round(fraction[s] * TRAJECTORIES) for s in SEEDS]
    one = bt.influence_trajectory(df, seed=SEEDS[1], trajectory=2)
    assert one["step"].tolist() == list(range(HORIZON))
    expected = df[(df["seed"] == SEEDS[1]) & (df["trajectory"] == 2)].sort_values("step")["influence"].to_numpy()
    np.testing.assert_array_equal(one["influence"].to_numpy(), expected)
    with pytest.raises(KeyError):
        bt.influence_trajectory(df, seed=99, trajectory=0)
    when = bt.opening_steps(df)
    assert when["seed"].tolist() == SEEDS
    assert when["opened"].tolist() == [round(fraction[s] * TRAJECTORIES) for s in SEEDS]
    for row in when.itertuples():
        opened = df[(df["seed"] == row.seed) & df["opened"]]["step"]
        if row.opened:
            assert (row.median_step, row.first_step, row.last_step) == (opened.median(), opened.min(), opened.max())
        else:
            assert math.isnan(row.median_step)


def test_opening_steps_by_hand():
    df = pd.DataFrame({"seed": [0, 0, 0, 1, 1], "trajectory": [0, 1, 2, 0, 1], "step": [3, 10, 40, 5, 6],
                       "opened": [True, True, False, False, False]})
    when = bt.opening_steps(df)
    assert when.to_dict("list") == {"seed": [0, 1], "opened": [2, 0], "median_step": [6.5, pytest.approx(float("nan"), nan_ok=True)],
                                    "first_step": [3.0, pytest.approx(float("nan"), nan_ok=True)],
                                    "last_step": [10.0, pytest.approx(float("nan"), nan_ok=True)]}


def test_forced_openers_map_to_their_seed(runs):
    """Seed 0's opener always chooses OPEN, seed 1's never: the box opens at step 0 in every
    trajectory of seed 0 and never in seed 1 (checks the model -> game layout)."""
    trainer = bt.load_trainer(runs["box_trapped_influence"])
    with torch.no_grad():
        trainer.net.head.pi_b[0 * trainer.N, OPEN] = 50.0  # seed 0, agent 0
        trainer.net.head.pi_b[1 * trainer.N, OPEN] = -50.0  # seed 1, agent 0
    df = bt.evaluate_openers(trainer, 5, seed=0)
    assert bt.open_fraction(df).tolist() == [1.0, 0.0]
    seed0 = df[df["seed"] == SEEDS[0]]
    assert seed0["open_action"].all()
    assert (seed0[seed0["opened"]]["step"] == 0).all() and seed0["opened"].sum() == 5
    assert not df[df["seed"] == SEEDS[1]]["open_action"].any()
    rate = bt.open_rate_per_step(df)
    assert rate[(rate["seed"] == SEEDS[0]) & (rate["step"] == 0)]["opens"].item() == 5


def test_evaluation_is_reproducible_and_leaves_trainer_untouched(runs):
    trainer = bt.load_trainer(runs["box_trapped_influence"])
    before = (trainer.state.generator.get_state(), trainer.env._generator.get_state(), trainer.env.t,
              trainer.env.state.pos.clone(), trainer.state.memory.policy.h.clone(), trainer.E, trainer.env_steps)
    first = bt.evaluate_openers(trainer, 3, seed=11)
    after = (trainer.state.generator.get_state(), trainer.env._generator.get_state(), trainer.env.t,
             trainer.env.state.pos.clone(), trainer.state.memory.policy.h.clone(), trainer.E, trainer.env_steps)
    for x, y in zip(before, after):
        assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
    pd.testing.assert_frame_equal(first, bt.evaluate_openers(trainer, 3, seed=11))


def test_load_trainer_restores_checkpoint(runs):
    trainer = bt.load_trainer(runs["box_trapped_a3c"])
    assert trainer.seeds == SEEDS and trainer.config.name == "box_trapped_a3c"
    assert trainer.env_steps == get_preset("smoke").num_envs * load_config("box_trapped_a3c").optim.rollout_length
    fresh = Trainer(trainer.config, trainer.preset, trainer.seeds)
    assert not torch.equal(fresh.net.head.pi_w, trainer.net.head.pi_w)  # weights came from the checkpoint


def test_missing_files_are_named(tmp_path, runs):
    with pytest.raises(FileNotFoundError, match="config.json"):
        bt.load_trainer(tmp_path)
    (tmp_path / "config.json").write_text((runs["box_trapped_a3c"] / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="checkpoint.pt"):
        bt.load_trainer(tmp_path)


def test_rejects_other_games_and_bad_counts(runs):
    cleanup = Trainer(load_config("cleanup_a3c"), get_preset("smoke"), [0])
    with pytest.raises(ValueError, match="box_trapped"):
        bt.evaluate_openers(cleanup, 2)
    with pytest.raises(ValueError, match="num_trajectories"):
        bt.evaluate_openers(bt.load_trainer(runs["box_trapped_a3c"]), 0)


def test_cli_writes_parquet(tmp_path, runs, capsys):
    out = tmp_path / "eval" / "influence.parquet"
    bt.main([str(runs["box_trapped_influence"]), "--trajectories", "2", "--seed", "5", "--out", str(out)])
    df = pd.read_parquet(out)
    assert list(df.columns) == list(bt.COLUMNS) and len(df) == len(SEEDS) * 2 * HORIZON
    assert "trajectories" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["influence.parquet"]  # no temporary files left
    with pytest.raises(SystemExit):
        bt.main([str(tmp_path / "missing"), "--out", str(tmp_path / "x.parquet")])


def test_figure_functions_draw_counts_and_the_opening():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.DataFrame({
        "seed": [0] * 4 + [1] * 4, "trajectory": [0, 0, 1, 1] * 2, "step": [0, 1] * 4,
        "open_action": [True, False, False, True, False, True, False, False],
        "opened": [True, False, False, True, False, True, False, False],
        "box_was_open": [False, True, False, False, False, False, False, False],
        "influence": [0.5, 0.1, 0.0, 0.7, 0.0, 0.2, 0.0, 0.0], "reward_0": 0.0, "reward_1": 0.0,
    })
    fig, (ax1, ax2) = plt.subplots(1, 2)
    bt.plot_open_counts(ax1, bt.open_rate_per_step(df), "x", "C0")
    line = ax1.get_lines()[0]
    assert list(line.get_ydata()) == [0.5, 1.0]  # seed 0: one opening at each step; seed 1: one at step 1
    bt.plot_influence_trajectory(ax2, bt.influence_trajectory(df, 0, 0), "C1")
    assert list(ax2.get_lines()[0].get_ydata()) == [0.5, 0.1]
    assert ax2.get_lines()[1].get_label() == "box opened (step 0)"
    plt.close(fig)
