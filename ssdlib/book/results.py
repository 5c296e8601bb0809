"""The results the book reads, loaded through one small API.

Layout under a results folder (default `results/` of the repository, see `results_folder`):

    results/runs/CONFIG/PRESET/          one training run (see `ssdlib.runs`)
        config.json  metrics.parquet  provenance.json  checkpoint.pt  done
        episodes.npz                     recorded episodes (`ssdlib.episodes`), when made
    results/figures/NOTEBOOK/*.png       figures written by the notebooks
    results/tables/NOTEBOOK/*.csv        tables written by the notebooks
    results/bench/*.jsonl                benchmark output (`ssdlib.bench`)

`load_metrics` concatenates the per-episode metrics of the runs asked for into one
DataFrame, labelled with config, preset, seed and hardware, so every number the book shows
can name what produced it. A relative results folder is taken from the repository root, never
from the working directory, and a config, preset or seed the results cannot hold is an error
that names it. The Theory-of-Mind configs (tom_*, `ssdlib.tom`) have their own presets and
training command; `is_tom` sends them there.
"""

import difflib
import fcntl
import hashlib
import json
import shlex
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..tom.config import PREFIX as TOM_PREFIX  # (no torch)

RUNS = "runs"
REPO = Path(__file__).resolve().parents[2]  # the folder holding the ssdlib package


def is_tom(config: str) -> bool:
    """Whether `config` is one of ssdlib.tom's (its own configs, presets and training command)."""
    return config.startswith(TOM_PREFIX)


def results_folder(results_dir: str | Path | None = None) -> Path:
    """The results folder `results_dir` (default "results") as an absolute path.

    A relative path is taken from the repository root (REPO), not from the working directory:
    a notebook opened in JupyterLab runs in notebooks/ and must read the committed runs in
    results/, not train new ones into notebooks/results/.
    """
    path = Path("results" if results_dir is None else results_dir).expanduser()
    return path if path.is_absolute() else REPO / path


def run_dir(results: str | Path | None, config: str, preset: str) -> Path:
    """The folder of the run of `config` on `preset` (`results_folder(results)`/runs/CONFIG/PRESET)."""
    return results_folder(results) / RUNS / config / preset


def check_names(configs: list[str], preset: str) -> None:
    """An unknown config or preset is an error naming it and the valid names: a typo would
    otherwise read as a missing run, with a training command that cannot work."""
    from ..tom.config import config_names as tom_config_names
    from ..tom.presets import PRESETS as TOM_PRESETS
    from ..training.conditions import PRESETS, config_names  # imports torch

    names = config_names() + tom_config_names()
    for config in configs:
        if config not in names:
            close = difflib.get_close_matches(config, names, n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
            raise ValueError(f"unknown config {config!r}; {hint}packaged configs: {', '.join(names)}")
    for presets in [PRESETS] + ([TOM_PRESETS] if any(is_tom(c) for c in configs) else []):
        if preset not in presets:
            raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(presets)}")


def available_runs(results: str | Path | None = "results") -> pd.DataFrame:
    """One row per run folder that has metrics: config, preset, seeds, finished, device."""
    rows = []
    for metrics in sorted(results_folder(results).glob(f"{RUNS}/*/*/metrics.parquet")):
        folder = metrics.parent
        info = run_info(folder)
        rows.append({"config": folder.parent.name, "preset": folder.name, "path": str(folder), **info})
    return pd.DataFrame(rows, columns=["config", "preset", "path", "seeds", "finished", "env_steps_per_seed",
                                       "device_name", "git_commit", "torch"])


def finished_presets(available: pd.DataFrame, configs: list[str], exclude: str) -> dict[str, list[str]]:
    """Per preset other than `exclude` (in name order), the configs of `configs` (in their
    order) whose run has finished on it, from `available_runs`; presets with none are left
    out. Longer runs (the GPU campaign's `campaign` preset, `gpu`, `paper`) finish condition by
    condition, and the book shows each as soon as it has."""
    finished = available[available.finished.astype(bool) & available.config.isin(configs)]
    out = {}
    for preset, frame in sorted(finished.groupby("preset"), key=lambda item: item[0]):
        if preset != exclude:
            done = set(frame.config)
            out[preset] = [c for c in configs if c in done]
    return out


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


def load_metrics(configs: list[str], preset: str, results: str | Path | None = "results",
                 seeds: list[int] | None = None) -> pd.DataFrame:
    """Per-episode metrics of `configs` trained on `preset`, with columns config, preset,
    device_name and finished added; only the rows of `seeds` when given (a run may hold more
    seeds than a notebook shows). An unknown name, a missing run or a run without one of
    `seeds` is an error naming it."""
    check_names(configs, preset)
    frames = []
    for config in configs:
        folder = run_dir(results, config, preset)
        path = folder / "metrics.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"no results for config {config!r} on preset {preset!r}: {str(path)!r} is missing")
        frame = pd.read_parquet(path)
        info = run_info(folder)
        if seeds is not None:
            _check_seeds(folder, seeds, info["seeds"], f"ask for seeds among {info['seeds']}")
            frame = frame[frame.seed.isin(seeds)]
        frames.append(frame.assign(config=config, preset=preset, device_name=info["device_name"],
                                   finished=info["finished"]))
    return pd.concat(frames, ignore_index=True)


def _check_seeds(folder: Path, seeds: list[int], have: list[int], remedy: str) -> None:
    """`seeds` must be distinct, one at least, and all among the run's seeds `have`."""
    _check_distinct(seeds)
    missing = [s for s in seeds if s not in have]
    if missing:
        raise ValueError(f"run {str(folder)!r} was trained on seeds {have}, not on {missing} of the seeds asked for "
                         f"{list(seeds)}; {remedy}")


def _check_distinct(seeds: list[int]) -> None:
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be one or more distinct seeds, got {list(seeds)}")


def stale_fields(folder: str | Path, config: str, preset: str) -> list[str]:
    """What differs between the run in `folder` and what `config` on `preset` resolves to now
    ("config.optim.lr_init", "preset.total_steps", ...); empty when the run is current. The
    seeds are not compared (`ensure_run` checks them on their own). Config fields
    added since the run was trained count as their defaults (which keep the old behaviour)."""
    if is_tom(config):
        from ..tom.config import config_from_dict
        from ..tom.train import resolved_config
    else:
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


def train_command(config: str, preset: str, seeds: list[int], folder: Path, restart: bool = False) -> str:
    """The shell command that trains (or resumes) the run of `config` on `preset` into `folder`."""
    module = "ssdlib.tom.train" if is_tom(config) else "ssdlib.train"
    words = ["python", "-m", module, config, "--preset", preset, "--seeds", ",".join(map(str, seeds)),
             "--out", str(folder)] + (["--restart"] if restart else [])
    return shlex.join(words)


def ensure_run(config: str, preset: str, seeds: list[int], results: str | Path | None = "results",
               device: str = "cpu", train: bool = False) -> Path:
    """The folder of a finished, current run of `config` on `preset` that holds `seeds`.

    A finished run whose stored config and preset match today's is reused when its seeds
    include `seeds`: it may hold more (pass the same seeds to `load_metrics` to show only
    those), never fewer, and a run without some of `seeds` is an error even with `train`, as
    training would discard it. With `train`, a missing run is trained on `seeds`, an
    unfinished one is resumed, and one whose config or preset changed is retrained from
    scratch (on its own seeds). Without `train` (the default: reading results never trains
    by surprise), each of these is an error naming the run and the commands that make it.
    """
    check_names([config], preset)
    folder = run_dir(results, config, preset)
    exists = (folder / "config.json").is_file()
    reproduce = f"python -m ssdlib.book.reproduce --preset {preset}"
    if results_folder(results) != results_folder():
        reproduce += f" --results {shlex.quote(str(results_folder(results)))}"
    if exists:
        stored = json.loads((folder / "config.json").read_text())["seeds"]
        _check_seeds(folder, seeds, stored, f"ask for seeds among {stored}, or retrain it on {list(seeds)} with "
                     f"`{train_command(config, preset, seeds, folder, restart=True)}` "
                     f"(from the book: `{reproduce} --retrain {config}`)")
        seeds = stored  # an unfinished run resumes, a stale one retrains, on its own seeds
    else:
        _check_distinct(seeds)
    changed = stale_fields(folder, config, preset) if exists else []
    if (folder / "done").is_file() and not changed:
        return folder
    if not train:
        command = train_command(config, preset, seeds, folder, restart=bool(changed))
        book = (f"or, from the book, `{reproduce}` (without --reuse-only), "
                "or train=True (in a notebook: `train = True` in its parameters cell)")
        if changed:
            raise ValueError(f"run {str(folder)!r} is stale: {', '.join(changed)} changed since it was trained; "
                             f"retrain it with `{command}`, {book}")
        if exists:
            raise FileNotFoundError(f"run {str(folder)!r} is unfinished; resume it with `{command}`, {book}")
        raise FileNotFoundError(f"no run {str(folder)!r}; train it with `{command}`, {book}")
    with run_lock(folder):  # another notebook may be training this run: wait for it, then look again
        if (folder / "done").is_file() and not stale_fields(folder, config, preset):
            return folder
        if is_tom(config):
            from ..tom.train import train as train_run
        else:
            from ..train import train as train_run  # the trainer is only needed when training

        return train_run(config, preset, seeds, device, folder, restart=bool(changed), progress=False)


@contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on run `folder` (a file in the temporary folder named by the
    folder's absolute path, so the results stay clean) while it trains: notebooks executed at
    the same time (`reproduce --jobs`) train a run they share once."""
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:24]
    path = Path(tempfile.gettempdir()) / "ssdlib-run-locks" / f"{digest}.lock"
    path.parent.mkdir(exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
