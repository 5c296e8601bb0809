"""`python -m ssdlib.gpu_run`: GPU slots turned into resumable training runs, tested on the CPU
with tiny configs and budgets of seconds."""

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from ssdlib import gpu_run
from ssdlib.gpu_run import CAMPAIGN, main
from ssdlib.train import train
from ssdlib.training.conditions.config import config_names, load_config
from ssdlib.training.conditions.presets import PRESETS, Preset, get_preset
from ssdlib.training.state import load_checkpoint
from ssdlib.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
# 2 games per seed, episodes of 10 steps; with rollouts of 8 steps one iteration is 16 env steps
TINY = Preset("gpurun_tiny", total_steps=16 * 24, num_envs=2, horizon=10, checkpoint_seconds=0.0)
CONFIGS = {  # the first trains 24 iterations, the second 3
    "cleanup_gpurun": ('env = "cleanup"', 16 * 24),
    "harvest_gpurun": ('env = "harvest"', 16 * 3),
}


def write_config(folder: Path, name: str) -> str:
    env, _ = CONFIGS[name]
    path = folder / f"{name}.toml"
    path.write_text(textwrap.dedent(f"""\
        name = "{name}"
        {env}

        [optim]
        rollout_length = 8
        """))
    return str(path)


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    preset = Preset(TINY.name, TINY.total_steps, TINY.num_envs, TINY.horizon, TINY.checkpoint_seconds,
                    steps_by_env=(("harvest", CONFIGS["harvest_gpurun"][1]),))
    monkeypatch.setitem(PRESETS, TINY.name, preset)
    return [write_config(tmp_path, name) for name in CONFIGS]


def metrics(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "metrics.parquet").drop(columns="wall_time")


def slot(out: Path, results: Path, configs: list[str], minutes: float, *extra: str) -> dict:
    return main(["--minutes", str(minutes), "--out", str(out), "--results", str(results), "--preset", TINY.name,
                 "--device", "cpu", "--seeds", "0,1", "--conditions", ",".join(configs), *extra])


def test_slots_stop_before_the_deadline_and_resume_exactly(tiny, tmp_path, capsys, monkeypatch):
    first = tiny[0]
    reference = train(first, TINY.name, [0, 1], "cpu", tmp_path / "reference", progress=False)  # also warms up
    out, results = tmp_path / "campaign", tmp_path / "runs"

    # the first slot (3 s, of which 1 s margin) cannot finish the first run, however fast the
    # machine: its iterations take at least 0.15 s (sleeping changes no number)
    iteration = Trainer.train_iteration
    monkeypatch.setattr(Trainer, "train_iteration", lambda self: (time.sleep(0.15), iteration(self))[1])
    started = time.monotonic()
    summary = slot(out, results, tiny, 0.05, "--bench-seconds", "0")
    monkeypatch.setattr(Trainer, "train_iteration", iteration)
    assert time.monotonic() - started <= 3.0
    assert summary["wall_s"] <= summary["budget_s"] == 3.0
    assert summary["stopped"] == "deadline"
    run = out / "runs" / "cleanup_gpurun"
    steps = load_checkpoint(run / "checkpoint.pt")["env_steps"]
    assert 0 < steps < TINY.total_steps and steps % 16 == 0
    assert not (run / "done").exists()
    assert summary["in_progress"] == {"cleanup_gpurun": {"state": "training", "env_steps_per_seed": steps,
                                                          "total_steps_per_seed": TINY.total_steps}}
    assert summary["pending"] == ["harvest_gpurun"] and summary["done"] == []
    assert summary["env_steps_per_s"]["cleanup_gpurun"] > 0
    campaign = json.loads((out / "campaign.json").read_text())
    assert campaign["preset"] == TINY.name and campaign["seeds"] == [0, 1]
    assert campaign["runs"]["cleanup_gpurun"]["env_steps_per_seed"] == steps
    assert campaign["slots"][0]["device"] == "cpu" and campaign["slots"][0]["wall_s"] <= 3.0
    assert campaign["slots"][0]["runs"]["cleanup_gpurun"]["env_steps_after"] == steps
    assert "cleanup_gpurun:" in capsys.readouterr().out

    summary = slot(out, results, tiny, 1, "--bench-seconds", "0")
    assert summary["stopped"] == "the campaign is finished", summary
    assert summary["finished_this_slot"] == summary["done"] == ["cleanup_gpurun", "harvest_gpurun"]
    assert summary["in_progress"] == {} and summary["pending"] == []
    finished = results / "cleanup_gpurun" / TINY.name
    for name in ("config.json", "metrics.parquet", "provenance.json", "done", "episodes.npz", "checkpoint.pt"):
        assert (finished / name).is_file(), name
        assert (results / "harvest_gpurun" / TINY.name / name).is_file(), name
    assert not (out / "runs" / "cleanup_gpurun").exists()  # the checkpoint left the campaign folder
    # the run trained over two slots equals the uninterrupted one
    pd.testing.assert_frame_equal(metrics(finished), metrics(reference))
    a, b = load_checkpoint(finished / "checkpoint.pt"), load_checkpoint(reference / "checkpoint.pt")
    for key in a["net"]:
        assert torch.equal(a["net"][key], b["net"][key]), key
    provenance = json.loads((finished / "provenance.json").read_text())
    assert [s["env_steps_after"] for s in provenance["campaign_slots"]] == [steps, TINY.total_steps]
    campaign = json.loads((out / "campaign.json").read_text())
    assert [s["finished"] for s in campaign["slots"]] == [[], ["cleanup_gpurun", "harvest_gpurun"]]
    assert campaign["runs"]["harvest_gpurun"]["state"] == "done"

    # a third slot has nothing left to do; a results folder holding another run is an error
    assert slot(out, results, tiny, 1, "--bench-seconds", "0")["finished_this_slot"] == []
    (finished / "done").unlink()
    with pytest.raises(SystemExit, match="holds another or an unfinished run of 'cleanup_gpurun'"):
        slot(out, results, tiny, 1, "--bench-seconds", "0")


def test_bad_input_is_an_error_naming_it(tiny, tmp_path):
    out, results = tmp_path / "campaign", tmp_path / "runs"
    cases = [
        (["--preset", "huge"], "unknown preset 'huge'"),
        (["--minutes", "0"], "--minutes must be positive, got 0.0"),
        (["--minutes", "-2"], "--minutes must be positive, got -2.0"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--device", "mps"], "device 'mps' is not supported"),
        *([] if torch.cuda.is_available() else [(["--device", "cuda"], "device 'cuda' needs CUDA")]),
        (["--device", "gpu0"], "unknown device 'gpu0'"),
        (["--conditions", "cleanup_a3c,no_such_condition"], "unknown config 'no_such_condition'"),
        (["--conditions", "cleanup_a3c,cleanup_a3c"], "distinct conditions"),
        (["--seeds", "x"], "bad --seeds 'x'"),
        (["--bench-seconds", "-1"], "--bench-seconds must be >= 0"),
    ]
    for args, message in cases:
        argv = ["--minutes", "1", "--out", str(out), "--results", str(results), "--device", "cpu", "--preset", "smoke",
                *args]
        with pytest.raises(SystemExit) as error:
            main(argv)
        assert message in str(error.value.code), (args, error.value.code)
        assert not out.exists(), args  # nothing written
    out.mkdir()
    (out / "campaign.json").write_text(json.dumps({"format": 1, "preset": "cpu", "seeds": [0, 1], "runs": {}, "slots": []}))
    with pytest.raises(SystemExit, match=re.escape("was written for preset 'cpu', not 'gpurun_tiny'")):
        slot(out, results, tiny, 1)


def test_campaign_order_and_preset():
    social = [name for name in config_names() if name.startswith(("cleanup_", "harvest_"))]
    assert sorted(CAMPAIGN) == sorted(social)  # every condition of the two social dilemmas, once
    assert CAMPAIGN[:8] == ("cleanup_a3c", "harvest_a3c", "cleanup_influence", "harvest_influence",
                            "cleanup_moa_baseline", "cleanup_moa_influence", "harvest_moa_baseline",
                            "harvest_moa_influence")
    for env in ("cleanup", "harvest"):
        preset = get_preset("campaign", env)
        assert preset.total_steps >= 2 * 10**7 and preset.checkpoint_seconds <= 60
        horizon = 1000  # the games' own; whole episodes of every game
        assert preset.total_steps % (preset.num_envs * horizon) == 0
        assert preset.total_steps % (preset.num_envs * load_config("cleanup_a3c").optim.rollout_length) == 0


def test_in_progress_checkpoint_is_not_git_ignored():
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0
    if subprocess.run(["git", "rev-parse"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    assert not ignored("results/campaign/runs/cleanup_moa_influence/checkpoint.pt")
    assert not ignored("results/campaign/campaign.json")
    assert ignored("results/runs/cleanup_moa_influence/campaign/checkpoint.pt")


def allowed_distributions() -> set[str]:
    """torch, numpy, pandas, pyarrow, matplotlib and what they require (not their extras)."""
    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    todo, seen = ["torch", "numpy", "pandas", "pyarrow", "matplotlib"], set()
    while todo:
        name = norm(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [re.match(r"[A-Za-z0-9._-]+", r).group() for r in requires if "extra ==" not in r]
    return seen


BLOCKER = """
import json, os, runpy, sys
BLOCKED = json.loads(os.environ["GPU_RUN_BLOCKED"])
sys.modules.update(dict.fromkeys(BLOCKED))  # None: an import fails, importlib.util.find_spec finds nothing
sys.argv[0] = "gpu_run"
try:
    runpy.run_module("ssdlib.gpu_run", run_name="__main__", alter_sys=True)
    import ssdlib.episodes.recording, ssdlib.training.replay  # what a finished run needs
finally:
    print("BLOCKED_LOADED", json.dumps(sorted(m for m in BLOCKED if sys.modules.get(m) is not None)))
"""


def test_command_needs_only_torch_numpy_pandas_pyarrow_matplotlib(tmp_path):
    """The command in a fresh process where every other installed package is hidden (tqdm,
    gymnasium, pettingzoo, ...): it benchmarks, trains and stops within its minutes."""
    allowed = allowed_distributions() | {"ssdlib"}
    blocked = sorted({module for module, dists in importlib.metadata.packages_distributions().items()
                      if not any(re.sub(r"[-_.]+", "-", d).lower() in allowed for d in dists)})
    assert "tqdm" in blocked and "torch" not in blocked
    config = write_config(tmp_path, "cleanup_gpurun")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", GPU_RUN_BLOCKED=json.dumps(blocked))
    out = tmp_path / "campaign"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER, "--minutes", "0.2", "--out", str(out), "--results", str(tmp_path / "runs"),
         "--preset", "smoke", "--conditions", config, "--seeds", "0", "--bench-seconds", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "BLOCKED_LOADED []" in result.stdout
    assert seconds <= 12 + 3  # the slot (from the module's import) and the interpreter's start
    summary = json.loads(result.stdout[result.stdout.index("{"):result.stdout.rindex("}") + 1])
    assert summary["wall_s"] <= 12 and summary["device"] == "cpu"
    lines = [json.loads(line) for line in (out / summary["bench"]).read_text().splitlines()]
    # 1 game, 4 games, stepped eagerly, then through the captured step; two configs acting
    # eagerly, then through the captured step
    assert [row["bench"] for row in lines] == ["env"] * 4 + ["train"] * 4
    assert [row.get("capture") for row in lines] == [False, False, True, True] * 2
    assert all(row["env_steps_per_s"] > 0 for row in lines[:4])  # the env rows come first, within the second
    assert all("error" not in row for row in lines)
    assert json.loads((out / "campaign.json").read_text())["slots"][-1]["capture"] is False  # not on the CPU
    assert lines[0]["env"] == "cleanup" and lines[0]["num_envs"] == 1 and lines[0]["env_steps_per_s"] > 0
    for row in lines:
        assert row["device"] == "cpu" and row["torch"] == torch.__version__ and "device_name" in row
        assert row.get("peak_gpu_bytes", None) is None  # measured on CUDA only
    assert (out / "campaign.json").is_file()


def test_the_slot_captures_acting_only_where_the_bench_found_it_faster_and_error_free():
    def row(config: str, capture: bool, speed: float | None, device: str = "cuda", **extra) -> dict:
        return {"bench": "train", "device": device, "config": config, "capture": capture, "env_steps_per_s": speed,
                **extra}
    faster = [row("a", False, 100.0), row("b", False, 50.0), row("a", True, 300.0), row("b", True, 60.0)]
    assert gpu_run.use_capture(faster)
    assert not gpu_run.use_capture(faster[:3] + [row("b", True, 40.0)])  # slower for one config
    assert not gpu_run.use_capture(faster[:2] + [row("a", True, None, error="capture failed")])
    assert not gpu_run.use_capture([dict(r, device="cpu") for r in faster])  # only on CUDA
    assert not gpu_run.use_capture(faster[:2])  # not timed
