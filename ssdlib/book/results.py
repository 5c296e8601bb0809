"""The results the book reads, loaded through one small API.

Layout under a results folder (default `results/`):

    results/runs/CONFIG/PRESET/          one training run (see `ssdlib.runs`)
        config.json  metrics.parquet  provenance.json  checkpoint.pt  done
        episodes.npz                     recorded episodes (`ssdlib.episodes`), when made
    results/figures/NOTEBOOK/*.png       figures written by the notebooks
    results/tables/NOTEBOOK/*.csv        tables written by the notebooks
    results/bench/*.jsonl                benchmark output (`ssdlib.bench`)

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


def stale_fields(folder: str | Path, config: str, preset: str) -> list[str]:
    """What differs between the run in `folder` and what `config` on `preset` resolves to now
    ("config.optim.lr_init", "preset.total_steps", ...); empty when the run is current. The
    seeds are not compared: a run is reused whatever seeds it was trained with. Config fields
    added since the run was trained count as their defaults (which keep the old behaviour)."""
    from ..train import resolved_config  # imports torch: only when runs are checked
    from ..training.conditions import config_from_dict

    stored = json.loads((Path(folder) / "config.json").read_text())
    current = json.loads(json.dumps(resolved_config(config, preset, stored["seeds"]), default=str))
    stored["config"] = json.loads(json.dumps(config_from_dict(stored["config"]).to_dict(), default=str))
    return sorted(_differences(stored.get("config"), current["config"], "config")
                  + _differences(stored.get("preset"), current["preset"], "preset"))


def _differences(old: object, new: object, where: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in sorted(set(old) | set(new)) for d in _differences(old.get(key), new.get(key), f"{where}.{key}")]
    return [] if old == new else [where]


def ensure_run(config: str, preset: str, seeds: list[int], results: str | Path = "results",
               device: str = "cpu", train: bool = False) -> Path:
    """The folder of a finished, current run of `config` on `preset`.

    A finished run whose stored config and preset match today's is reused, whatever seeds it
    was trained with. With `train`, a missing run is trained on `seeds`, an unfinished one is
    resumed, and one whose config or preset changed is retrained from scratch (on its own
    seeds). Without `train`, each of these is an error naming the run and what to do.
    """
    folder = run_dir(results, config, preset)
    exists = (folder / "config.json").is_file()
    changed = stale_fields(folder, config, preset) if exists else []
    if (folder / "done").is_file() and not changed:
        return folder
    command = f"`python -m ssdlib.train {config} --preset {preset} --out {folder}`"
    if not train:
        if changed:
            raise ValueError(f"run {str(folder)!r} is stale: {', '.join(changed)} changed since it was trained; "
                             f"retrain it with {command} --restart, or rerun with train=True")
        raise FileNotFoundError(f"no finished run {str(folder)!r}; train it with {command} or rerun with train=True")
    from ..train import train as train_run  # the trainer is only needed when training

    if changed:
        seeds = json.loads((folder / "config.json").read_text())["seeds"]
    return train_run(config, preset, seeds, device, folder, restart=bool(changed), progress=False)
