"""Figure 17's robustness sweeps (`ssdlib.experiments.robustness`): the packaged sweeps around
Table 1, ranking of settings, pooling of the top settings x seeds, and the rebuild manifest
seeing only finished sweep runs. Training is exercised by the smoke book (test_book.py)."""

import json

import numpy as np
import pandas as pd
import pytest

from ssdlib.book.reproduce import notebook_inputs
from ssdlib.experiments import robustness as rb
from ssdlib.experiments import social_dilemmas as sd
from ssdlib.sweep import sweep_names
from ssdlib.training.conditions.config import load_config

CONFIGS = [sd.config_name(g, c) for g in sd.GAMES for c in rb.CONDITIONS]


@pytest.mark.parametrize("config", CONFIGS)
def test_each_sweep_varies_lr_and_entropy_around_its_own_table1_setting(config):
    assert rb.sweep_name(config) in sweep_names()
    sweep = rb.robustness_sweep(config, "cpu", [0, 1, 2, 3, 4])
    base = load_config(config).optim
    lrs = sorted({r.overrides["optim.lr_init"] for r in sweep.runs})
    entropies = sorted({r.overrides["optim.entropy_coef"] for r in sweep.runs})
    assert lrs == pytest.approx([base.lr_init / 2, base.lr_init, base.lr_init * 2], rel=1e-3)
    assert entropies == pytest.approx([base.entropy_coef, base.entropy_coef * 2], rel=1e-3)
    assert len(sweep.runs) == 6 and sweep.seeds == [0, 1, 2, 3, 4] and sweep.preset == "cpu"
    table1 = [r.name for r in sweep.runs if rb.is_table1(sweep, r.overrides)]
    assert table1 == ["run-002"]  # lr kept, entropy kept
    # every other field is Table 1's
    for run in sweep.runs:
        data, expected = run.config.to_dict(), load_config(config).to_dict()
        data["optim"] = {k: v for k, v in data["optim"].items() if k not in ("lr_init", "entropy_coef")}
        expected["optim"] = {k: v for k, v in expected["optim"].items() if k not in ("lr_init", "entropy_coef")}
        assert data == expected


def test_retargeted_sweeps_keep_their_grid_and_bad_arguments_are_named():
    smoke = rb.robustness_sweep("harvest_influence", "smoke", [0, 1], max_settings=2)
    full = rb.robustness_sweep("harvest_influence", "cpu", [0, 1, 2, 3, 4])
    assert [r.overrides for r in smoke.runs] == [r.overrides for r in full.runs[:2]]
    assert smoke.preset == "smoke" and smoke.seeds == [0, 1]
    with pytest.raises(ValueError, match="max_settings must be at least 1, got 0"):
        rb.robustness_sweep("harvest_influence", "smoke", [0], max_settings=0)
    with pytest.raises(ValueError, match="no robustness sweep for config 'cleanup_prosocial'"):
        rb.robustness_sweep("cleanup_prosocial", "cpu", [0])
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        rb.robustness_sweep("cleanup_a3c", "fast", [0])


def test_an_unrun_sweep_lists_every_setting_as_missing(tmp_path):
    summary = rb.sweep_summary("cleanup_a3c", "cpu", [0, 1, 2, 3, 4], tmp_path)
    assert list(summary.status) == ["missing"] * 6 and summary.final_collective_reward.isna().all()
    assert list(summary.table1) == [False, False, True, False, False, False]
    assert not (tmp_path / "sweeps").exists()  # reading never writes
    assert rb.rank_settings(summary).empty


def test_a_run_still_training_counts_as_not_started(tmp_path):
    folder = rb.sweep_folder(tmp_path, "cleanup_a3c", "cpu") / "run-000"
    folder.mkdir(parents=True)
    (folder / "provenance.json").write_text(json.dumps({"env_steps_per_seed": 192_000, "wall_time_s": 1536.7}))
    summary = rb.sweep_summary("cleanup_a3c", "cpu", [0, 1, 2, 3, 4], tmp_path)
    assert summary.status.iloc[0] == "missing"
    assert (summary.env_steps_per_seed == 0).all() and summary.wall_time_s.isna().all()


def _summary(rewards: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for config, values in rewards.items():
        for i, value in enumerate(values):
            rows.append({"config": config, "run": f"run-{i:03d}", "status": "missing" if np.isnan(value) else "done",
                         "final_collective_reward": value, "folder": f"/x/{config}/run-{i:03d}"})
    return pd.DataFrame(rows)


def test_settings_are_ranked_per_condition_best_first_and_the_top_marked():
    summary = _summary({"cleanup_a3c": [3.0, np.nan, 9.0, 1.0, 7.0, 5.0, 8.0],
                        "cleanup_influence": [2.0, 4.0]})
    ranked = rb.rank_settings(summary, top=5)
    a3c = ranked[ranked.config == "cleanup_a3c"]
    assert list(a3c.run) == ["run-002", "run-006", "run-004", "run-005", "run-000", "run-003"]
    assert list(a3c["rank"]) == [1, 2, 3, 4, 5, 6] and list(a3c.top) == [True] * 5 + [False]
    influence = ranked[ranked.config == "cleanup_influence"]
    assert list(influence.run) == ["run-001", "run-000"] and influence.top.all()
    # configs stay in the summary's (the paper's) order, not the alphabet's
    ranked = rb.rank_settings(_summary({"harvest_visible": [1.0], "cleanup_influence": [2.0]}))
    assert list(ranked.config) == ["harvest_visible", "cleanup_influence"]


def test_top_settings_are_pooled_as_setting_seed_replicates(tmp_path):
    from ssdlib.runs import write_metrics

    folders = {}
    for run, offset in (("run-000", 0.0), ("run-001", 100.0), ("run-002", -50.0)):
        rows = [{"seed": s, "episode": e, "env_steps": 100 * (e + 1), "collective_reward": offset + 10 * s + e,
                 **{f"apples_{k}": 5.0 for k in range(5)}, **{f"return_{k}": 1.0 for k in range(5)}}
                for s in (0, 1) for e in range(5)]
        folders[run] = tmp_path / run
        folders[run].mkdir()
        write_metrics(folders[run] / "metrics.parquet", rows)
    ranked = pd.DataFrame({"config": "cleanup_a3c", "run": list(folders), "folder": [str(f) for f in folders.values()],
                           "rank": [2, 1, 3], "top": [True, True, False]})
    metrics = rb.top_metrics(ranked)
    assert sorted(metrics.seed.unique()) == ["run-000/0", "run-000/1", "run-001/0", "run-001/1"]
    curves = sd.learning_curves(metrics, "collective_reward")
    assert int(curves.seeds.iloc[0]) == 4
    assert curves["mean"].iloc[-1] == pytest.approx(np.mean([4, 14, 104, 114]))
    with pytest.raises(ValueError, match="no finished setting to show"):
        rb.top_metrics(ranked.assign(top=False))


def test_robustness_table_compares_each_condition_with_a3c_pooled():
    finals = pd.DataFrame({
        "config": ["cleanup_a3c"] * 4 + ["cleanup_influence"] * 4,
        "setting": ["run-000", "run-000", "run-001", "run-001"] * 2,
        "seed": [0, 1] * 4,
        "collective_reward": [1.0, 2.0, 3.0, 4.0, 0.0, 2.0, 5.0, 6.0],
    })
    table = rb.robustness_table(finals).set_index("config")
    assert table.loc["cleanup_a3c", "mean"] == 2.5 and table.loc["cleanup_influence", "mean"] == 3.25
    assert table.loc["cleanup_influence", "sd"] == pytest.approx(np.std([0, 2, 5, 6], ddof=1))
    assert table.loc["cleanup_influence", "above A3C's mean"] == 0.5  # 5 and 6 of 0, 2, 5, 6
    assert table.loc["cleanup_influence", "settings"] == 2 and table.loc["cleanup_influence", "replicates"] == 4
    assert table.loc["cleanup_influence", "condition"] == "basic influence"


def test_the_manifest_of_a_sweep_reader_sees_only_finished_sweep_runs(tmp_path):
    notebooks, library = tmp_path / "notebooks", tmp_path / "lib"
    notebooks.mkdir(), library.mkdir()
    for name in ("robustness", "experiment1"):
        (notebooks / f"{name}.ipynb").write_text("{}")
    run = tmp_path / "results" / "sweeps" / "robustness_cleanup_a3c" / "cpu" / "run-000"
    run.mkdir(parents=True)
    (tmp_path / "results" / "runs").mkdir()

    def inputs(name):
        return notebook_inputs(name, {"preset": "cpu"}, notebooks, tmp_path / "results", library)["results"]

    before = {n: inputs(n) for n in ("robustness", "experiment1")}
    (run / "metrics.parquet").write_bytes(b"checkpointed")  # still training: nothing changes
    (run / "config.json").write_text(json.dumps({}))
    assert {n: inputs(n) for n in before} == before
    (run / "done").write_text("")  # finished: the reader re-executes, the others do not
    assert inputs("robustness") != before["robustness"] and inputs("experiment1") == before["experiment1"]
