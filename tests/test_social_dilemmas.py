"""The analysis behind the Experiment I, baselines and results chapters, on synthetic metrics."""

import math

import numpy as np
import pandas as pd
import pytest

from ssdlib import metrics as m
from ssdlib.experiments import social_dilemmas as sd
from ssdlib.training.conditions.config import load_config

N = 5


def fake_metrics(config: str, seeds: list[int], points: int, level: float, apples: float = 10.0,
                 starved_seed: int | None = None) -> pd.DataFrame:
    """Per-episode rows like the trainer's: collective reward = level + seed + episode index."""
    rows = []
    for seed in seeds:
        for episode in range(points):
            row = {"config": config, "seed": seed, "episode": episode, "env_steps": (episode + 1) * 1000,
                   "collective_reward": level + seed + episode, "equality": 0.5,
                   "collective_times_equality": 0.5 * (level + seed + episode)}
            for k in range(N):
                row[f"apples_{k}"] = 0.0 if (seed == starved_seed and k == 3) else apples
                row[f"return_{k}"] = (level + seed + episode) / N
            rows.append(row)
    return pd.DataFrame(rows)


def runs_for(configs: list[str], steps: int = 10_000) -> pd.DataFrame:
    return pd.DataFrame({"config": configs, "preset": "cpu", "env_steps_per_seed": steps, "device_name": "test CPU"})


def test_config_names_round_trip_and_reject_unknown_names() -> None:
    assert sd.config_name("cleanup", "influence") == "cleanup_influence"
    assert sd.split_config("harvest_inequity_aversion") == ("harvest", "inequity_aversion")
    with pytest.raises(ValueError, match="'tetris'"):
        sd.config_name("tetris", "a3c")
    with pytest.raises(ValueError, match="'selfless'"):
        sd.split_config("cleanup_selfless")


@pytest.mark.parametrize(("points", "window", "final"), [(1, 1, 1), (10, 1, 2), (62, 6, 12), (488, 48, 50),
                                                          (5000, 200, 50)])
def test_windows_scale_with_curve_length_up_to_the_papers(points: int, window: int, final: int) -> None:
    assert sd.smoothing_window(points) == window
    assert sd.final_window(points) == final


def test_learning_curves_match_the_sliding_window_ci() -> None:
    frame = pd.concat([fake_metrics("cleanup_a3c", [0, 1, 2], 20, 0.0), fake_metrics("cleanup_influence", [0, 1], 20, 5.0)])
    curves = sd.learning_curves(frame)
    a3c = curves[curves.config == "cleanup_a3c"]
    values = np.array([[s + e for e in range(20)] for s in range(3)], dtype=float)
    band = m.sliding_window_ci(values, window=2, confidence=0.995)
    np.testing.assert_allclose(a3c["mean"], band.mean)
    np.testing.assert_allclose(a3c["lower"], band.lower)
    np.testing.assert_allclose(a3c["upper"], band.upper)
    assert set(a3c.seeds) == {3} and set(a3c.window) == {2}
    assert set(curves[curves.config == "cleanup_influence"].seeds) == {2}
    with pytest.raises(ValueError, match="'speed'"):
        sd.learning_curves(frame, "speed")


def test_learning_curves_use_only_the_points_every_seed_reached() -> None:
    frame = pd.concat([fake_metrics("harvest_a3c", [0], 10, 0.0), fake_metrics("harvest_a3c", [1], 7, 0.0)])
    curves = sd.learning_curves(frame)
    assert list(curves.env_steps) == [1000 * (i + 1) for i in range(7)]


def test_final_rewards_average_the_last_fifth_and_apply_the_harvest_filter() -> None:
    frame = pd.concat([
        fake_metrics("harvest_a3c", [0, 1, 2], 10, 100.0, starved_seed=1),
        fake_metrics("cleanup_a3c", [0, 1], 10, -50.0, apples=0.0),
    ])
    finals = sd.final_rewards(frame).set_index(["config", "seed"])
    # last 2 of 10 episodes: level + seed + mean(8, 9)
    assert finals.loc[("harvest_a3c", 0), "collective_reward"] == pytest.approx(108.5)
    assert finals.loc[("harvest_a3c", 2), "points"] == 2
    assert list(finals.loc["harvest_a3c", "kept"]) == [True, False, True]  # seed 1 has a starved agent
    assert finals.loc[("harvest_a3c", 1), "min_agent_apples"] == 0.0
    assert finals.loc["cleanup_a3c", "kept"].all()  # the filter is Harvest's only


def test_table4_reports_kept_seeds_provenance_and_the_papers_reference() -> None:
    frame = pd.concat([
        fake_metrics("harvest_influence", [0, 1, 2], 10, 100.0, starved_seed=2),
        fake_metrics("cleanup_visible", [0], 10, -50.0),
    ])
    finals = sd.final_rewards(frame)
    table = sd.table4(finals, runs_for(["harvest_influence", "cleanup_visible"])).set_index("config")
    row = table.loc["harvest_influence"]
    assert row["ours"] == pytest.approx(np.mean([108.5, 109.5]))  # seeds 0 and 1 only
    assert row["ours sd"] == pytest.approx(np.std([108.5, 109.5], ddof=1))
    assert row["ours R(1-G)"] == pytest.approx(0.5 * np.mean([108.5, 109.5, 110.5]))  # every seed
    assert row["seeds kept"] == "2/3" and row["paper"] == 1073 and row["preset"] == "cpu"
    assert row["steps per seed"] == 10_000 and row["hardware"] == "test CPU" and row["final points"] == 2
    visible = table.loc["cleanup_visible"]
    assert math.isnan(visible["paper"]) and math.isnan(visible["ours sd"])  # one seed: no spread
    with pytest.raises(ValueError, match="cleanup_visible"):
        sd.table4(finals, runs_for(["harvest_influence"]))


def test_book_forms_of_table4_name_what_produced_each_cell() -> None:
    configs = [sd.config_name(g, c) for g in sd.GAMES for c in ("a3c", "influence")]
    frame = pd.concat([fake_metrics(c, [0, 1], 10, 10.0 * i) for i, c in enumerate(configs)])
    table = sd.table4(sd.final_rewards(frame), runs_for(configs, steps=320_000))
    book = sd.table4_book(table).set_index("model")
    assert book.loc["basic influence", "Harvest, paper"] == "1,073"
    assert book.loc["A3C", "Cleanup, ours"] == "9 ± 1 (cpu, 3.2e+05 steps, 2/2 seeds)"
    assert "visible actions" not in book.index  # not in the table: not a row
    formatted = sd.format_table4(table)
    assert formatted.loc[0, "ours"] == "9 ± 1" and formatted.loc[0, "paper"] == "89"


def test_plots_draw_every_condition(tmp_path) -> None:
    import matplotlib.pyplot as plt

    configs = [sd.config_name("cleanup", c) for c in ("a3c", "influence")]
    frame = pd.concat([fake_metrics(c, [0, 1, 2], 12, 10.0 * i) for i, c in enumerate(configs)])
    colours = {c: "C0" for c in configs}
    fig, (left, right) = plt.subplots(1, 2)
    sd.plot_curves(left, sd.learning_curves(frame), {c: c for c in configs}, colours)
    assert len(left.lines) == 2 and len(left.collections) == 2
    with pytest.raises(ValueError, match="cleanup_prosocial"):
        sd.plot_curves(left, sd.learning_curves(frame), {"cleanup_prosocial": "p"}, colours)
    table = sd.table4(sd.final_rewards(frame), runs_for(configs))
    sd.plot_table4(right, table, "cleanup", {"cleanup_a3c": "C0", "cleanup_influence": "C2"})
    assert len(right.patches) == 2
    handles, labels = right.get_legend_handles_labels()  # one legend entry (colour) per condition
    bars = [h for h in handles if hasattr(h, "patches")]
    assert len(bars) == 2 and len({h.patches[0].get_facecolor() for h in bars}) == 2
    assert "paper (reference)" in labels and len(labels) == 3
    with pytest.raises(ValueError, match="harvest"):
        sd.plot_table4(right, table, "harvest", colours)
    plt.close(fig)


def test_final_episodes_are_the_last_points_of_each_config() -> None:
    frame = pd.concat([fake_metrics("cleanup_a3c", [0, 1], 10, 0.0), fake_metrics("harvest_a3c", [0], 60, 0.0)])
    last = sd.final_episodes(frame)
    cleanup, harvest = last[last.config == "cleanup_a3c"], last[last.config == "harvest_a3c"]
    assert sorted(cleanup.env_steps.unique()) == [9000, 10_000] and len(cleanup) == 4 and set(cleanup.points) == {2}
    assert sorted(harvest.env_steps.unique()) == [1000 * i for i in range(49, 61)] and set(harvest.points) == {12}


def test_final_band_order_compares_the_last_bands() -> None:
    curves = pd.DataFrame({"config": ["a", "a", "b", "b", "c", "c"], "env_steps": [1, 2] * 3,
                           "mean": [0, 10, 0, 5, 0, 9], "lower": [0, 9, 0, 4, 0, 8.5], "upper": [0, 11, 0, 6, 0, 9.5]})
    assert sd.final_band_order(curves, "a", "b") == "above"
    assert sd.final_band_order(curves, "b", "a") == "below"
    assert sd.final_band_order(curves, "a", "c") == "overlapping"
    with pytest.raises(ValueError, match="'d'"):
        sd.final_band_order(curves, "a", "d")


# ---------------------------------------------------------------------------- Experiment III
def test_experiment3_conditions_are_configs_with_the_papers_table4_references() -> None:
    from ssdlib.book.plotting import condition_colour
    from ssdlib.training.conditions import config_names

    assert set(sd.EXPERIMENT_III) == {"a3c", "moa_baseline", "moa_influence"}
    for game in sd.GAMES:
        for condition in sd.CONDITIONS:
            config = sd.config_name(game, condition)
            assert sd.split_config(config) == (game, condition)
            assert config in config_names()
    assert sd.split_config("cleanup_moa_baseline") == ("cleanup", "moa_baseline")
    assert sd.config_label("harvest_moa_influence") == "Harvest, influence MOA"
    assert {g: sd.PAPER_TABLE4[g]["moa_influence"] for g in sd.GAMES} == {"cleanup": 392, "harvest": 588}
    assert sd.PAPER_TABLE4["cleanup"]["moa_baseline"] is None
    assert {g: sd.PAPER_TABLE4[g]["comm_influence"] for g in sd.GAMES} == {"cleanup": 166, "harvest": 951}
    assert set(sd.EXPERIMENT_II) == {"a3c", "comm_baseline", "comm_influence"}
    colours = [condition_colour(sd.config_name("cleanup", c)) for c in sd.CONDITIONS]
    assert len(set(colours)) == len(colours)  # one colour per condition, e.g. in the Table 4 bars


def test_table4_book_has_our_moa_rows_beside_the_papers() -> None:
    configs = [sd.config_name(g, c) for g in sd.GAMES for c in ("a3c", "moa_baseline", "moa_influence")]
    frame = pd.concat([fake_metrics(c, [0, 1], 10, 10.0 * i) for i, c in enumerate(configs)])
    table = sd.table4(sd.final_rewards(frame), runs_for(configs, steps=320_000))
    assert list(table.condition[:3]) == ["A3C", "MOA baseline", "influence MOA"]
    book = sd.table4_book(table).set_index("model")
    assert list(book.index) == ["A3C", "MOA baseline", "influence MOA"]
    assert book.loc["influence MOA", "Cleanup, paper"] == "392" and book.loc["influence MOA", "Harvest, paper"] == "588"
    assert book.loc["MOA baseline", "Harvest, paper"] == "–"
    assert book.loc["influence MOA", "Cleanup, ours"].endswith("(cpu, 3.2e+05 steps, 2/2 seeds)")


def test_agent_mean_reads_only_the_per_agent_columns_of_its_prefix() -> None:
    frame = pd.DataFrame({"influence_0": [1.0, 2.0], "influence_1": [3.0, 4.0], "influence_mean_0": [100.0, 100.0],
                          "influence_above_mean_0": [0.5, np.nan], "influence_above_mean_1": [0.1, np.nan]})
    np.testing.assert_allclose(sd.agent_mean(frame, "influence"), [2.0, 3.0])  # not influence_mean_0
    np.testing.assert_allclose(sd.agent_mean(frame, "influence_mean"), [100.0, 100.0])  # influencer 0 only
    above = sd.agent_mean(frame, "influence_above_mean")
    assert above[0] == pytest.approx(0.3) and np.isnan(above[1])
    with pytest.raises(ValueError, match="listening_k"):
        sd.agent_mean(frame, "listening")


def test_configs_with_and_final_summary_of_a_diagnostic() -> None:
    moa = fake_metrics("cleanup_moa_influence", [0, 1, 2], 10, 0.0).assign(moa_accuracy=lambda f: 0.1 * f.seed + 0.01 * f.episode)
    a3c = fake_metrics("cleanup_a3c", [0, 1], 10, 0.0)
    frame = pd.concat([moa, a3c], ignore_index=True)  # a3c has no moa_accuracy: NaN
    assert sd.configs_with(frame, "moa_accuracy") == ["cleanup_moa_influence"]
    assert sd.configs_with(frame, "nothing") == []
    summary = sd.final_summary(frame, ["moa_accuracy", "collective_reward"]).set_index("config")
    row = summary.loc["cleanup_moa_influence"]
    per_seed = [0.1 * s + 0.085 for s in range(3)]  # the last 2 of 10 episodes: 0.08 and 0.09
    assert row["moa_accuracy"] == pytest.approx(np.mean(per_seed))
    assert row["moa_accuracy sd"] == pytest.approx(np.std(per_seed, ddof=1))
    assert row["seeds"] == 3 and row["points"] == 2 and row["condition"] == "moa_influence"
    assert np.isnan(summary.loc["cleanup_a3c", "moa_accuracy"])
    assert summary.loc["cleanup_a3c", "collective_reward"] == pytest.approx(np.mean([8.5, 9.5]))
    with pytest.raises(ValueError, match="'speed'"):
        sd.final_summary(frame, ["speed"])


def test_listening_table_reports_the_change_since_initialisation_at_the_last_point() -> None:
    grown = fake_metrics("harvest_moa_influence", [0, 1], 5, 0.0).assign(
        listening=lambda f: 2.0 * (1 + 0.1 * f.episode * (f.seed + 1)), listening_init=2.0)
    still = fake_metrics("harvest_visible", [0, 1], 5, 0.0).assign(listening=3.03, listening_init=3.0)
    old = fake_metrics("harvest_influence", [0, 1], 5, 0.0)  # trained before the diagnostic: no columns
    table = sd.listening_table(pd.concat([grown, still, old], ignore_index=True)).set_index("config")
    assert list(table.index) == ["harvest_moa_influence", "harvest_visible"]
    row = table.loc["harvest_moa_influence"]
    assert row["env_steps"] == 5000 and row["seeds"] == 2
    assert row["change"] == pytest.approx(np.mean([0.4, 0.8])) and row["change sd"] == pytest.approx(np.std([0.4, 0.8], ddof=1))
    assert row["listening"] == pytest.approx(2.0 * 1.6) and row["listening_init"] == 2.0
    assert table.loc["harvest_visible", "change"] == pytest.approx(0.01)
    assert [sd.listening_state(c) for c in table.change] == ["grown", "initial"]
    assert sd.listening_state(-0.2) == "shrunk" and sd.listening_state(0.05, tolerance=0.01) == "grown"
    with pytest.raises(ValueError, match="NaN"):
        sd.listening_state(float("nan"))


def test_chance_accuracy_is_one_over_the_envs_actions() -> None:
    from ssdlib.envs import make_env

    for game in sd.GAMES:
        assert sd.chance_accuracy(game) == pytest.approx(1 / make_env(game, num_envs=1).num_actions)
    assert sd.chance_accuracy("cleanup") < sd.chance_accuracy("harvest")  # cleanup has the extra CLEAN action
    with pytest.raises(ValueError, match="'box_trapped'"):
        sd.chance_accuracy("box_trapped")


def test_condition_settings_are_read_from_the_configs() -> None:
    table = sd.condition_settings([sd.config_name(g, c) for g in ("cleanup", "harvest") for c in ("a3c", "visible", "influence")]).set_index("config")
    cleanup, harvest = table.loc["cleanup_influence"], table.loc["harvest_influence"]
    assert (cleanup["acting first"], cleanup.divergence, cleanup["influencees paid"]) == (1, "Jensen-Shannon", "yes")
    assert (harvest["acting first"], harvest.divergence, harvest["influencees paid"]) == (3, "PMI (one sample of the KL)", "no")
    assert cleanup["actions seen"].startswith("agent 0 acts first; the others see its actions")
    assert table.loc["cleanup_visible", "acting first"] == 3 and table.loc["cleanup_visible", "β"] == 0.0
    assert table.loc["cleanup_visible", "actions seen"].startswith("agents 0–2 act first")
    assert table.loc["cleanup_a3c", "actions seen"] == "no other agent's actions"
    assert table.loc["harvest_influence", "β"] == load_config("harvest_influence").reward.influence_weight
    moa = sd.condition_settings(["cleanup_moa_influence"]).iloc[0]
    assert moa["actions seen"] == "every other agent's actions of the previous step" and moa["influence source"] == "moa"
