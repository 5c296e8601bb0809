"""The results the book reads, loaded through one small API.

Layout under a results folder (default `results/`):

    results/runs/CONFIG/PRESET/          one training run (see `ssdlib.runs`)
        config.json  metrics.parquet  provenance.json  checkpoint.pt  done
    results/figures/NOTEBOOK/*.png       figures written by the notebooks

`load_metrics` concatenates the per-episode metrics of the runs asked for into one
DataFrame, labelled with config, preset, seed and hardware, so every number the book shows
can name what produced it.
"""

import json
from pathlib import Path

import pandas as pd

RUNS = "runs"


def run_dir(results: str | Path, config: str, preset: str) -> Path:
    return Path(results) / RUNS / config / preset


def available_runs(results: str | Path = "results") -> pd.DataFrame:
    """One row per run folder that has metrics: config, preset, seeds, finished, device."""
    rows = []
    for metrics in sorted(Path(results).glob(f"{RUNS}/*/*/metrics.parquet")):
        folder = metrics.parent
        info = run_info(folder)
        rows.append({"config": folder.parent.name, "preset": folder.name, "path": str(folder), **info})
    return pd.DataFrame(rows, columns=["config", "preset", "path", "seeds", "finished", "env_steps_per_seed",
                                       "device_name", "git_commit", "torch"])


def run_info(folder: str | Path) -> dict:
    """Seeds, whether finished, steps and hardware of one run folder."""
    folder = Path(folder)
    for name in ("config.json", "provenance.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"run folder {str(folder)!r} has no {name}")
    config = json.loads((folder / "config.json").read_text())
    prov = json.loads((folder / "provenance.json").read_text())
    return {
        "seeds": config["seeds"],
        "finished": (folder / "done").is_file(),
        "env_steps_per_seed": prov.get("env_steps_per_seed"),
        "device_name": prov.get("device_name"),
        "git_commit": prov.get("git_commit"),
        "torch": prov.get("torch"),
    }


def load_metrics(configs: list[str], preset: str, results: str | Path = "results") -> pd.DataFrame:
    """Per-episode metrics of `configs` trained on `preset`, with columns config, preset and
    device_name added. A missing run is an error naming its folder."""
    frames = []
    for config in configs:
        folder = run_dir(results, config, preset)
        path = folder / "metrics.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"no results for config {config!r} on preset {preset!r}: {str(path)!r} is missing")
        frame = pd.read_parquet(path)
        info = run_info(folder)
        frames.append(frame.assign(config=config, preset=preset, device_name=info["device_name"],
                                   finished=info["finished"]))
    return pd.concat(frames, ignore_index=True)


def ensure_run(config: str, preset: str, seeds: list[int], results: str | Path = "results",
               device: str = "cpu", train: bool = False) -> Path:
    """The folder of a finished run of `config` on `preset`, training it first (or resuming
    it) when `train` is true. A finished run is reused whatever seeds it was trained with;
    without `train`, an unfinished or missing run is an error naming what to run."""
    folder = run_dir(results, config, preset)
    if (folder / "done").is_file():
        return folder
    if not train:
        raise FileNotFoundError(
            f"no finished run {str(folder)!r}; train it with `python -m ssdlib.train {config} --preset {preset} "
            f"--out {folder}` or rerun with train=True"
        )
    from .train import train as train_run  # the trainer is only needed when training

    return train_run(config, preset, seeds, device, folder, progress=False)
