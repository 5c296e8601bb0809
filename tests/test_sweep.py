"""Sweeps (`python -m ssdlib.sweep`): specs expand to validated runs, bad specs name what is
wrong, and, with a local Ray, a smoke sweep runs, a failed run is reported without stopping
the others, and an interrupted sweep resumes without retraining its finished runs.

The Ray tests are skipped when ray is not installed, except in CI (CI set), where they must run.
"""

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ssdlib.experiments.social_dilemmas import final_rewards
from ssdlib.runs import read_metrics
from ssdlib.sweep import (
    config_toml,
    load_sweep,
    prepare,
    run_sweep,
    sweep_from_dict,
    sweep_names,
)
from ssdlib.training.conditions.config import config_names, load_config

REPO = Path(__file__).resolve().parent.parent
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None and not os.environ.get("CI"),
    reason="ray is not installed: pip install -e '.[sweep]' (CI installs it with the test extra)",
)
# Small and quick: two agents on the mini map train a smoke run in a few seconds.
TINY = """
condition = "cleanup_influence"
preset = "smoke"
seeds = [0, 1]
"""


def write_spec(folder: Path, text: str) -> Path:
    path = folder / "spec.toml"
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------- specs (no Ray)
def test_grid_expands_every_combination_in_order_with_its_config(tmp_path):
    sweep = load_sweep(write_spec(tmp_path, TINY + """
[grid]
"optim.lr_init" = [0.001, 0.002]
optim.entropy_coef = [0.0, 0.01, 0.02]
"""))
    assert [run.name for run in sweep.runs] == [f"run-{i:03d}" for i in range(6)]
    assert sweep.runs[1].overrides == {"optim.lr_init": 0.001, "optim.entropy_coef": 0.01}
    assert sweep.runs[5].config.optim.lr_init == 0.002 and sweep.runs[5].config.optim.entropy_coef == 0.02
    base = load_config("cleanup_influence")
    assert sweep.runs[0].config.reward == base.reward and sweep.seeds == [0, 1] and sweep.num_cpus == 1


def test_random_search_is_reproducible_and_stays_in_its_ranges():
    spec = {"condition": "cleanup_influence", "preset": "smoke", "seeds": "0-2",
            "random": {"samples": 20, "seed": 3, "fields": {
                "optim.lr_init": ["log_uniform", 1e-4, 1e-2],
                "reward.influence_weight": ["uniform", 0.0, 0.3],
                "reward.divergence": ["choice", "kl", "jsd"]}}}
    runs = sweep_from_dict(spec).runs
    assert [r.overrides for r in runs] == [r.overrides for r in sweep_from_dict(spec).runs]
    assert len(runs) == 20 and sweep_from_dict(spec).seeds == [0, 1, 2]
    assert all(1e-4 <= r.config.optim.lr_init <= 1e-2 and 0 <= r.config.reward.influence_weight <= 0.3 for r in runs)
    assert {r.config.reward.divergence for r in runs} == {"kl", "jsd"}
    other = sweep_from_dict({**spec, "random": {**spec["random"], "seed": 4}}).runs
    assert [r.overrides for r in other] != [r.overrides for r in runs]


@pytest.mark.parametrize("body, message", [
    ('[grid]\n"optim.lr_initt" = [0.001]', "'optim.lr_initt'"),
    ('[grid]\n"optimiser.lr_init" = [0.001]', "unknown config field 'optimiser.lr_init'"),
    ('[grid]\n"optim.lr_init" = []', "empty grid: field 'optim.lr_init' has no values"),
    ("[grid]", "empty grid"),
    ('[grid]\n"optim.lr_init" = [0.001, -0.5]',
     "run-001 (optim.lr_init = -0.5): config field 'optim.lr_init' = -0.5: must be > 0"),
    ('[grid]\n"reward.divergence" = ["kl", "euclid"]', "'reward.divergence' = 'euclid'"),
    ('[grid]\n"optim.lr_init" = 0.001', "must be a list"),
    ('[random]\nsamples = 2\n[random.fields]\n"optim.lr_init" = ["normal", 0, 1]', "start with a distribution"),
    ('[random]\nsamples = 2\n[random.fields]\n"optim.lr_init" = ["log_uniform", 0, 1]', "0 < low < high"),
    ('[random]\nsamples = 0\n[random.fields]\n"optim.lr_init" = ["uniform", 0, 1]', "samples must be an integer >= 1"),
    ('[grid]\n"optim.lr_init" = [0.001]\n[random]\nsamples = 1', "exactly one of [grid] and [random]"),
])
def test_bad_specs_are_errors_naming_what_is_wrong(tmp_path, body, message):
    with pytest.raises(ValueError) as error:
        load_sweep(write_spec(tmp_path, TINY + body))
    assert message in str(error.value) and "spec.toml" in str(error.value)


@pytest.mark.parametrize("head, message", [
    ('condition = "cleanup_nope"\npreset = "smoke"', "condition: unknown config 'cleanup_nope'"),
    ('condition = "missing.toml"\npreset = "smoke"', "missing.toml' does not exist"),
    ('condition = "cleanup_influence"\npreset = "huge"', "unknown preset 'huge'"),
    ('condition = "cleanup_influence"\npreset = "smoke"\nseed = [0]', "unknown key(s) ['seed']"),
    ('condition = "cleanup_influence"\npreset = "smoke"\nseeds = [0, 0]', "'seeds' must be distinct"),
    ('condition = "cleanup_influence"\npreset = "smoke"\nnum_cpus = 0', "'num_cpus' must be a number > 0, got 0"),
])
def test_bad_spec_headers_are_errors(tmp_path, head, message):
    with pytest.raises(ValueError) as error:
        load_sweep(write_spec(tmp_path, head + '\n[grid]\n"optim.lr_init" = [0.001]\n'))
    assert message in str(error.value)


def test_an_unknown_packaged_sweep_is_an_error():
    with pytest.raises(ValueError, match="unknown sweep 'nope'; packaged sweeps: \\['cleanup_influence_lr'"):
        load_sweep("nope")


def test_a_condition_path_is_relative_to_the_spec(tmp_path):
    (tmp_path / "mine.toml").write_text((REPO / "ssdlib/training/conditions/configs/cleanup_a3c.toml").read_text())
    sweep = load_sweep(write_spec(tmp_path, 'condition = "mine.toml"\npreset = "smoke"\n[grid]\nnum_agents = [2, 3]\n'))
    assert [run.config.num_agents for run in sweep.runs] == [2, 3] and sweep.base.name == "cleanup_a3c"


def test_run_configs_round_trip_through_toml(tmp_path):
    for name in config_names():
        config = load_config(name)
        path = tmp_path / f"{name}.toml"
        path.write_text(config_toml(config.to_dict()))
        assert load_config(path) == config, name


def test_packaged_sweep_is_a_grid_around_table_1():
    assert "cleanup_influence_lr" in sweep_names()
    sweep = load_sweep("cleanup_influence_lr")
    table1 = load_config("cleanup_influence")
    assert sweep.preset == "cpu" and len(sweep.runs) == 9
    assert any(run.config == table1 for run in sweep.runs)


def test_a_folder_holding_another_sweep_is_refused(tmp_path):
    grid = '[grid]\n"optim.lr_init" = [0.001, 0.002]\n'
    prepare(load_sweep(write_spec(tmp_path, TINY + grid)), tmp_path / "out")
    assert json.loads((tmp_path / "out/run-001/overrides.json").read_text())["overrides"] == {"optim.lr_init": 0.002}
    prepare(load_sweep(write_spec(tmp_path, TINY + "num_cpus = 2\n" + grid)), tmp_path / "out")  # resources may change
    with pytest.raises(ValueError, match="holds a different sweep \\(runs differ\\)"):
        prepare(load_sweep(write_spec(tmp_path, TINY + grid.replace("0.002", "0.003"))), tmp_path / "out")


def test_single_runs_never_import_ray():
    code = "import sys, ssdlib.train, ssdlib.sweep, ssdlib.book.results; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# ---------------------------------------------------------------------------- with Ray
SMALL = TINY + """
[grid]
num_agents = [2]
"env_options.map" = ["mini_cleanup"]
"optim.lr_init" = [0.001, 0.002]
"optim.entropy_coef" = [0.0, 0.01]
"""


def sweep_command(spec: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ssdlib.sweep", str(spec), "--out", str(out), *extra]


@pytest.fixture(scope="module")
def local_ray():
    """One small local Ray instance for the whole file (each start costs ~20 s on a busy
    2-core machine): the sweeps run in this process or join it with --address."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@needs_ray
def test_smoke_sweep_trains_every_run_and_a_rerun_skips_them_without_ray(tmp_path, local_ray):
    spec, out = write_spec(tmp_path, SMALL), tmp_path / "out"
    lines: list[str] = []
    summary = run_sweep(load_sweep(spec), out, echo=lines.append)
    assert "0 finished before, 4 to run" in lines[0] and "0/4 done, 2 running, 2 queued, 0 failed" in lines[1]
    assert "4/4 done, 0 running, 0 queued, 0 failed; best run-00" in lines[-2]
    written = pd.read_csv(out / "summary.csv")
    assert list(written.run) == list(summary.run) and list(written.status) == list(summary.status)
    assert written.final_collective_reward.tolist() == pytest.approx(summary.final_collective_reward.tolist())
    assert list(summary.run) == [f"run-{i:03d}" for i in range(4)] and set(summary.status) == {"done"}
    assert list(summary["optim.entropy_coef"]) == [0.0, 0.01, 0.0, 0.01]
    for row in summary.to_dict("records"):
        folder = out / row["run"]
        assert {"config.json", "config.toml", "overrides.json", "metrics.parquet", "checkpoint.pt", "provenance.json",
                "done", "log.txt"} <= {p.name for p in folder.iterdir()}
        config = json.loads((folder / "config.json").read_text())["config"]
        assert config["optim"]["lr_init"] == row["optim.lr_init"] and config["num_agents"] == 2
        book = final_rewards(read_metrics(folder).assign(config="cleanup_influence"))
        assert math.isclose(row["final_collective_reward"], book.collective_reward.mean())
        assert row["env_steps_per_seed"] == 1_600
    again = subprocess.run(sweep_command(spec, out), check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "4 finished before, 0 to run" in again.stdout, again.stdout + again.stderr
    assert "Ray" not in again.stderr  # nothing to run: no Ray instance started


@needs_ray
def test_a_failed_run_is_reported_with_its_log_and_the_others_finish(tmp_path, local_ray):
    spec = write_spec(tmp_path, TINY.replace("[0, 1]", "[0]") + """
[grid]
num_agents = [2]
"env_options.map" = ["no_such_map", "mini_cleanup"]
""")
    lines: list[str] = []
    summary = run_sweep(load_sweep(spec), tmp_path / "out", echo=lines.append)
    assert list(summary.status) == ["failed", "done"]
    assert "unknown map 'no_such_map'" in summary.error[0]
    report = next(line for line in lines if "FAILED" in line)
    assert report.startswith("run-000 FAILED (num_agents = 2, env_options.map = 'no_such_map')")
    assert "Traceback" in report and "log.txt" in report  # the log's tail is shown
    assert "unknown map" in (tmp_path / "out/run-000/log.txt").read_text()
    assert "1/2 done, 0 running, 0 queued, 1 failed; best run-001" in lines[-2]


@needs_ray
def test_an_interrupted_sweep_keeps_its_finished_runs_and_resumes_the_others(tmp_path, local_ray):
    # Two runs at a time, so the third starts only when one has finished: stopping the sweep
    # once the third has written its first checkpoint leaves a finished run and one mid-way
    # (the second may be either, as it ends about when the first does).
    spec = write_spec(tmp_path, TINY + '[grid]\n"optim.lr_init" = [0.001, 0.0015, 0.002]\n')
    out = tmp_path / "out"
    folders = [out / f"run-{i:03d}" for i in range(3)]
    # A shell that starts pytest in the background ignores SIGINT in its children; the driver
    # must take Ctrl-C as a terminal would deliver it.
    driver = subprocess.Popen(sweep_command(spec, out, "--address", local_ray), cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and driver.poll() is None:
        if (folders[2] / "checkpoint.pt").is_file() and not (folders[2] / "done").is_file():
            break
        time.sleep(0.05)
    driver.send_signal(signal.SIGINT)  # Ctrl-C
    output = driver.communicate(timeout=60)[0]
    assert driver.returncode != 0 and "interrupted: rerun the same command to resume" in output, output

    import ray

    deadline = time.monotonic() + 60  # the interrupted driver's tasks end with it
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    finished = {f.name: (f / "metrics.parquet").stat().st_mtime_ns for f in folders if (f / "done").is_file()}
    interrupted = [f.name for f in folders if (f / "checkpoint.pt").is_file() and f.name not in finished]
    assert finished and interrupted, "the sweep was not stopped between two runs' checkpoints"

    lines: list[str] = []
    summary = run_sweep(load_sweep(spec), out, echo=lines.append)
    assert set(summary.status) == {"done"}
    assert f"{len(finished)} finished before, {3 - len(finished)} to run" in lines[0]
    assert {name: (out / name / "metrics.parquet").stat().st_mtime_ns for name in finished} == finished  # kept
    for name in interrupted:
        log = (out / name / "log.txt").read_text()
        assert log.count("start on") == 2 and "resuming from the checkpoint at" in log
        episodes = read_metrics(out / name).groupby("seed").episode.apply(list)
        assert len(episodes) == 2 and all(list(e) == [0, 1, 2, 3] for e in episodes)
