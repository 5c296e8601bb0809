"""Run folders: atomic writes, provenance, and reading results back.

A run folder (one condition, one preset, a list of seeds) holds:
- `config.json`: the resolved config, preset, seeds and device;
- `metrics.parquet`: one row per seed and episode (see `Trainer._finish_episode`);
- `checkpoint.pt`: everything needed to resume (weights, optimiser, env and RNG states);
- `provenance.json`: git commit, torch version, device name, steps/s, wall time;
- `done`: written last, when the run has finished.
"""

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch

from . import __version__
from .hardware import device_name


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)` then rename the temporary file onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=True, default=str)))


def write_metrics(path: Path, rows: list[dict]) -> None:
    atomic_write(path, lambda tmp: pd.DataFrame(rows).to_parquet(tmp, index=False))


CODE_PATHS = ("ssdlib", "pyproject.toml")  # what decides a run's numbers (results/ does not)


def git_commit() -> str:
    """The commit of the code that runs now, with '+dirty' when the library or its package
    metadata has uncommitted changes (changed results files do not count), or 'unknown'."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
                               cwd=root, capture_output=True, text=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(device: str | torch.device, **extra: Any) -> dict:
    return {
        "git_commit": git_commit(),
        "ssdlib_version": __version__,
        "torch": torch.__version__,
        "device": str(device),
        "device_name": device_name(device),
        **extra,
    }


def read_metrics(run_dir: str | Path) -> pd.DataFrame:
    """The per-episode metrics of a run folder as a DataFrame."""
    path = Path(run_dir) / "metrics.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics file {str(path)!r}: has this run been trained?")
    return pd.read_parquet(path)
