"""Sweeps: many runs of one condition with some config fields changed, each run a Ray task.

    python -m ssdlib.sweep cleanup_influence_lr --out results/sweeps/cleanup_influence_lr
    python -m ssdlib.sweep my_sweep.toml --out /shared/sweeps/x --address auto

A spec (TOML; packaged ones live in ssdlib/sweeps/) names the base condition, the preset,
the seeds every run trains, the resources of one run, and either a grid or a seeded random
search over config fields named like `optim.lr_init`:

    condition = "cleanup_influence"   # a packaged config, or a .toml path relative to the spec
    preset = "cpu"
    seeds = [0, 1]                    # or "0-4"
    num_cpus = 1                      # per run (default 1); num_gpus likewise (default 0)

    [grid]                            # every combination, in the order written
    "optim.lr_init" = [0.0005, 0.00107]
    "reward.influence_weight" = [0.1, 0.146]

    [random]                          # or: `samples` draws with Python's random.Random(seed)
    samples = 8
    seed = 0
    [random.fields]
    "optim.lr_init" = ["log_uniform", 1e-4, 1e-2]
    "optim.entropy_coef" = ["uniform", 0.0, 0.01]
    "reward.divergence" = ["choice", "kl", "jsd"]

Every run's config is built and validated before anything starts, so a bad field or value is
an error naming it. Each run is a normal run folder DIR/run-NNN (see `ssdlib.runs`) with its
config as config.toml (`python -m ssdlib.train DIR/run-NNN/config.toml --preset P --seeds S
--out DIR/run-NNN` trains it alone), its overrides in overrides.json and its output in log.txt. Rerunning the
command skips finished runs and resumes the others from their checkpoints; DIR/summary.csv
lists every run, its overrides and its final collective reward. Across machines DIR must be
on a filesystem every machine sees at the same path.

Ray is imported only here, and only when a sweep runs: nothing else in ssdlib needs it.
"""

import argparse
import copy
import itertools
import json
import math
import random
import re
import socket
import sys
import time
import tomllib
import traceback
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .experiments.social_dilemmas import final_episodes
from .runs import atomic_write, read_metrics, write_json
from .train import parse_seeds
from .training.conditions.config import Config, config_from_dict, load_config
from .training.conditions.presets import get_preset

SWEEP_DIR = Path(__file__).parent / "sweeps"
SPEC_KEYS = ("condition", "preset", "seeds", "num_cpus", "num_gpus", "grid", "random")
RANDOM_KEYS = ("samples", "seed", "fields")
DISTRIBUTIONS = ("uniform", "log_uniform", "choice")
OBJECT_STORE_BYTES = 200 * 1024**2  # runs exchange only paths and small dicts through Ray
LOG_TAIL_LINES = 20


class SweepError(Exception):
    """The sweep cannot run here (Ray did not start, or runs ask for more than the cluster has)."""


@dataclass(frozen=True)
class Run:
    name: str  # its folder under the sweep's DIR
    overrides: dict[str, Any]  # dotted config field -> value
    config: Config


@dataclass(frozen=True)
class Sweep:
    spec: Path
    condition: str
    base: Config
    preset: str
    seeds: list[int]
    num_cpus: float
    num_gpus: float
    runs: list[Run]

    @property
    def fields(self) -> list[str]:
        return list(dict.fromkeys(f for run in self.runs for f in run.overrides))

    def record(self) -> dict[str, Any]:
        """What decides the runs' numbers (not their resources): a sweep folder must match it."""
        return {"condition": self.condition, "base_config": self.base.to_dict(), "preset": self.preset,
                "seeds": self.seeds, "runs": {run.name: run.overrides for run in self.runs}}


# ---------------------------------------------------------------------------- specs
def sweep_names() -> list[str]:
    return sorted(p.stem for p in SWEEP_DIR.glob("*.toml"))


def load_sweep(name_or_path: str | Path) -> Sweep:
    """A packaged spec by name (see `sweep_names`) or a spec file, with every run's config
    built and validated."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        if str(name_or_path) not in sweep_names():
            raise ValueError(f"unknown sweep {str(name_or_path)!r}; packaged sweeps: {sweep_names()}")
        path = SWEEP_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ValueError(f"sweep spec {str(path)!r} does not exist")
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"sweep spec {str(path)!r} is not valid TOML: {error}") from None
    try:
        return sweep_from_dict(spec, path)
    except ValueError as error:
        raise ValueError(f"sweep spec {str(path)!r}: {error}") from None


def sweep_from_dict(spec: dict[str, Any], path: Path = Path("sweep.toml")) -> Sweep:
    """Expand a parsed spec into runs; relative condition paths are relative to `path`'s folder."""
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; a spec has {list(SPEC_KEYS)}")
    for key in ("condition", "preset"):
        if not isinstance(spec.get(key), str):
            raise ValueError(f"{key!r} must be a string, got {spec.get(key)!r}")
    condition = spec["condition"]
    try:
        base = load_config(path.parent / condition if condition.endswith(".toml") else condition)
    except ValueError as error:
        raise ValueError(f"condition: {error}") from None
    get_preset(spec["preset"])
    seeds = spec.get("seeds", [0])
    if isinstance(seeds, str):
        seeds = parse_seeds(seeds)
    elif (not isinstance(seeds, list) or not seeds or not all(type(s) is int and s >= 0 for s in seeds)
          or len(set(seeds)) != len(seeds)):
        raise ValueError(f"'seeds' must be distinct non-negative integers or a range like \"0-4\", got {seeds!r}")
    num_cpus, num_gpus = spec.get("num_cpus", 1), spec.get("num_gpus", 0)
    for key, value, ok in (("num_cpus", num_cpus, "> 0"), ("num_gpus", num_gpus, ">= 0")):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not (value > 0 if ok == "> 0" else value >= 0):
            raise ValueError(f"{key!r} must be a number {ok}, got {value!r}")
    if ("grid" in spec) == ("random" in spec):
        raise ValueError("a spec needs exactly one of [grid] and [random]")
    points = grid_points(spec["grid"]) if "grid" in spec else random_points(spec["random"])
    width = max(3, len(str(len(points) - 1)))
    runs = []
    for i, overrides in enumerate(points):
        name = f"run-{i:0{width}d}"
        try:
            config = config_from_dict(apply_overrides(base.to_dict(), overrides))
        except ValueError as error:
            shown = ", ".join(f"{k} = {v!r}" for k, v in overrides.items())
            raise ValueError(f"{name} ({shown}): {error}") from None
        runs.append(Run(name, overrides, config))
    return Sweep(path, condition, base, spec["preset"], seeds, float(num_cpus), float(num_gpus), runs)


def _fields(table: Any, where: str, prefix: str = "") -> dict[str, list]:
    """Dotted field name -> list. TOML reads an unquoted `optim.lr_init = [...]` as nested tables,
    so both spellings are flattened to the same name."""
    if not isinstance(table, dict):
        raise ValueError(f"[{where}] must be a table of config fields, got {table!r}")
    fields = {}
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            fields.update(_fields(value, where, path))
        elif isinstance(value, list):
            fields[path] = value
        else:
            raise ValueError(f"[{where}] field {path!r} must be a list, got {value!r}")
    return fields


def grid_points(table: Any) -> list[dict[str, Any]]:
    """Every combination of the fields' values; the last field varies fastest."""
    fields = _fields(table, "grid")
    if not fields:
        raise ValueError("empty grid: [grid] names no config fields")
    for path, values in fields.items():
        if not values:
            raise ValueError(f"empty grid: field {path!r} has no values")
    return [dict(zip(fields, values)) for values in itertools.product(*fields.values())]


def random_points(table: Any) -> list[dict[str, Any]]:
    """`samples` draws of every field from its distribution, reproducible from `seed`."""
    if not isinstance(table, dict):
        raise ValueError(f"[random] must be a table, got {table!r}")
    unknown = sorted(set(table) - set(RANDOM_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in [random]; it has {list(RANDOM_KEYS)} "
                         "(the fields go in [random.fields])")
    samples, seed = table.get("samples"), table.get("seed", 0)
    if type(samples) is not int or samples < 1:
        raise ValueError(f"[random] samples must be an integer >= 1, got {samples!r}")
    if type(seed) is not int:
        raise ValueError(f"[random] seed must be an integer, got {seed!r}")
    fields = _fields(table.get("fields", {}), "random.fields")
    if not fields:
        raise ValueError("[random.fields] names no config fields")
    for path, spec in fields.items():
        _check_distribution(path, spec)
    rng = random.Random(seed)
    return [{path: _draw(rng, spec) for path, spec in fields.items()} for _ in range(samples)]


def _check_distribution(path: str, spec: list) -> None:
    if not spec or spec[0] not in DISTRIBUTIONS:
        raise ValueError(f"[random.fields] {path!r} = {spec!r}: start with a distribution, "
                         f"one of {list(DISTRIBUTIONS)}")
    kind, args = spec[0], spec[1:]
    if kind == "choice":
        if not args:
            raise ValueError(f"[random.fields] {path!r} = {spec!r}: choice needs at least one value")
        return
    numbers = len(args) == 2 and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
    if not numbers or not args[0] < args[1] or (kind == "log_uniform" and args[0] <= 0):
        need = "0 < low < high" if kind == "log_uniform" else "low < high"
        raise ValueError(f"[random.fields] {path!r} = {spec!r}: {kind} needs two numbers with {need}")


def _draw(rng: random.Random, spec: list) -> Any:
    kind, args = spec[0], spec[1:]
    if kind == "choice":
        return rng.choice(args)
    if kind == "uniform":
        return rng.uniform(*args)
    return math.exp(rng.uniform(math.log(args[0]), math.log(args[1])))


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config dict with dotted fields replaced; unknown leaves are left for
    `config_from_dict` to reject by name."""
    data = copy.deepcopy(data)
    for path, value in overrides.items():
        *parents, leaf = path.split(".")
        table = data
        for depth, key in enumerate(parents):
            table = table.get(key)
            if not isinstance(table, dict):
                prefix = ".".join(parents[:depth + 1])
                raise ValueError(f"unknown config field {path!r}: the config has no table {prefix!r}")
        table[leaf] = value
    return data


def config_toml(data: dict[str, Any]) -> str:
    """A config dict as TOML that `load_config` reads back: its scalars, then one [table] per table."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for key, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{_toml_key(key)}]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # Python's float reprs (1e-05, inf, nan) are TOML floats
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) as TOML")


# ---------------------------------------------------------------------------- results
def final_reward(run_dir: Path) -> tuple[float, int]:
    """The run's final collective reward as the book computes it (`final_episodes`: the last
    fifth of its points, at most the paper's 50), averaged over its seeds; and how many points."""
    frame = final_episodes(read_metrics(run_dir).assign(config=run_dir.name))
    return float(frame.groupby("seed").collective_reward.mean().mean()), int(frame.points.iloc[0])


def run_row(run: Run, folder: Path, status: str, error: str = "") -> dict[str, Any]:
    """One line of the summary table."""
    row: dict[str, Any] = {"run": run.name, "status": status, **run.overrides,
                           "final_collective_reward": math.nan, "final_points": 0, "env_steps_per_seed": 0,
                           "wall_time_s": math.nan, "error": error, "folder": str(folder)}
    if status == "done":
        row["final_collective_reward"], row["final_points"] = final_reward(folder)
    if (folder / "provenance.json").is_file():
        prov = json.loads((folder / "provenance.json").read_text())
        row["env_steps_per_seed"], row["wall_time_s"] = prov["env_steps_per_seed"], prov["wall_time_s"]
    return row


def log_tail(folder: Path, lines: int = LOG_TAIL_LINES) -> str:
    log = folder / "log.txt"
    text = log.read_text().splitlines()[-lines:] if log.is_file() else ["(no log.txt)"]
    return "\n".join("    " + line for line in text)


# ---------------------------------------------------------------------------- one run (a Ray task)
def train_run(folder: str, preset: str, seeds: list[int], num_cpus: float, num_gpus: float) -> dict[str, Any]:
    """Train (or resume) one run folder with its output and any traceback in its log.txt; a
    failure is returned, not raised, so the driver reports it with the log and goes on."""
    import torch

    from .train import train

    run_dir, host = Path(folder), socket.gethostname()
    device = "cuda" if num_gpus > 0 else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES to this task's GPUs
    torch.set_num_threads(max(1, int(num_cpus)))
    with open(run_dir / "log.txt", "a", buffering=1) as log, redirect_stdout(log), redirect_stderr(log):
        print(f"{datetime.now():%Y-%m-%d %H:%M:%S} start on {host}: {device}, {torch.get_num_threads()} threads")
        if (run_dir / "provenance.json").is_file():
            steps = json.loads((run_dir / "provenance.json").read_text())["env_steps_per_seed"]
            print(f"resuming from the checkpoint at {steps} env steps per seed")
        try:
            train(str(run_dir / "config.toml"), preset, seeds, device, run_dir, progress=False)
        except Exception as error:
            traceback.print_exc()
            return {"ok": False, "error": f"{type(error).__name__}: {error}", "host": host}
        print(f"{datetime.now():%Y-%m-%d %H:%M:%S} finished")
    return {"ok": True, "host": host}


# ---------------------------------------------------------------------------- the driver
def prepare(sweep: Sweep, out: Path) -> None:
    """Write the sweep's record and each run's config and overrides; refuse a folder that holds
    another sweep (its run folders would not match their names)."""
    record = json.loads(json.dumps(sweep.record()))
    previous_path = out / "sweep.json"
    if previous_path.is_file():
        previous = json.loads(previous_path.read_text())
        differ = sorted(k for k in set(record) | set(previous) if record.get(k) != previous.get(k))
        if differ:
            raise ValueError(f"{str(out)!r} holds a different sweep ({', '.join(differ)} differ); use another --out")
    write_json(previous_path, record)
    for run in sweep.runs:
        folder = out / run.name
        text = config_toml(run.config.to_dict())
        atomic_write(folder / "config.toml", lambda tmp, text=text: Path(tmp).write_text(text))
        write_json(folder / "overrides.json", {"condition": sweep.condition, "overrides": run.overrides})


def run_sweep(sweep: Sweep, out: Path, address: str | None = None, num_cpus: int | None = None,
              echo: Callable[[str], None] = print) -> pd.DataFrame:
    """Run every unfinished run of `sweep` as a Ray task and write out/summary.csv; returns it.

    Ray: an instance this process has already initialised is used and left running; otherwise
    `address` is joined (e.g. "auto"), or with None a local instance with `num_cpus` CPUs
    (None: all) is started; either is let go at the end, also after an interruption."""
    import ray

    out = out.resolve()  # the tasks' working folder is not ours
    out.mkdir(parents=True, exist_ok=True)
    prepare(sweep, out)
    rows = {run.name: run_row(run, out / run.name, "done") for run in sweep.runs if (out / run.name / "done").is_file()}
    todo = [run for run in sweep.runs if run.name not in rows]
    echo(f"sweep {sweep.spec.stem}: {len(sweep.runs)} runs of {sweep.condition} [{sweep.preset}], "
         f"seeds {sweep.seeds}; {len(rows)} finished before, {len(todo)} to run")
    owner = bool(todo) and not ray.is_initialized()
    if owner:
        _start_ray(ray, address, num_cpus)
    try:
        if todo:
            rows |= _run_tasks(ray, sweep, todo, out, echo)
        else:
            echo(_progress(sweep, rows, 0, 0))
    finally:
        if owner:
            ray.shutdown()
    summary = pd.DataFrame([rows[run.name] for run in sweep.runs])
    atomic_write(out / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False))
    echo(f"summary: {out / 'summary.csv'}")
    return summary


def _start_ray(ray: Any, address: str | None, num_cpus: int | None) -> None:
    try:
        if address is None:
            ray.init(num_cpus=num_cpus, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES)
        else:
            ray.init(address=address)
    except Exception as error:  # Ray raises bare Exceptions and ConnectionErrors here
        where = "start a local Ray instance" if address is None else f"join the Ray cluster at {address!r}"
        hint = ("; on a busy machine Ray's agents can miss the raylet's startup deadline: "
                "rerun, or start Ray with `ray start --head` and pass --address auto") if address is None else ""
        raise SweepError(f"could not {where}: {error}{hint}") from error


def _run_tasks(ray: Any, sweep: Sweep, todo: list[Run], out: Path, echo: Callable[[str], None]) -> dict[str, dict]:
    """Submit `todo`, then report each run as it ends; returns their summary rows."""
    total = ray.cluster_resources()
    for key, need in (("CPU", sweep.num_cpus), ("GPU", sweep.num_gpus)):
        if need > total.get(key, 0):
            raise SweepError(f"each run asks for {need:g} {key}s but the Ray cluster has {total.get(key, 0):g}")
    slots = int(total["CPU"] // sweep.num_cpus)
    if sweep.num_gpus > 0:
        slots = min(slots, int(total["GPU"] // sweep.num_gpus))
    task = ray.remote(train_run)
    pending = {task.options(num_cpus=sweep.num_cpus, num_gpus=sweep.num_gpus, name=run.name).remote(
        str(out / run.name), sweep.preset, sweep.seeds, sweep.num_cpus, sweep.num_gpus): run for run in todo}
    rows: dict[str, dict] = {}
    echo(_progress(sweep, rows, len(pending), slots))
    while pending:
        [ref], _ = ray.wait(list(pending), num_returns=1)
        run = pending.pop(ref)
        folder = out / run.name
        try:
            result = ray.get(ref)
        except ray.exceptions.RayError as error:  # the worker or its machine died
            result = {"ok": False, "error": f"{type(error).__name__}: {error}", "host": "?"}
            with open(folder / "log.txt", "a") as log:
                log.write(f"sweep driver: the task failed: {result['error']}\n")
        if result["ok"] and not (folder / "done").is_file():
            result = {"ok": False, "error": f"{run.name} finished on {result['host']} but {folder / 'done'} is not "
                      "here: across machines, --out must be on a filesystem every machine shares"}
        rows[run.name] = run_row(run, folder, "done" if result["ok"] else "failed", result.get("error", ""))
        if not result["ok"]:
            echo(f"{run.name} FAILED ({_shown(run.overrides)}): {result['error']}\n  log {folder / 'log.txt'}:\n"
                 f"{log_tail(folder)}")
        echo(_progress(sweep, rows, len(pending), slots))
    return rows


def _shown(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v!r}" for k, v in overrides.items())


def _progress(sweep: Sweep, rows: dict[str, dict], in_flight: int, slots: int) -> str:
    """One line: runs done, running, queued and failed, and the best final reward so far.
    Running: as many of the `in_flight` runs as the cluster has `slots` for (Ray core does not
    say which have started); the rest are queued."""
    done = [row for row in rows.values() if row["status"] == "done"]
    failed = len(rows) - len(done)
    running = min(in_flight, slots)
    line = (f"{datetime.now():%H:%M:%S} {len(done)}/{len(sweep.runs)} done, {running} running, "
            f"{in_flight - running} queued, {failed} failed")
    if done:
        best = max(done, key=lambda row: row["final_collective_reward"])
        overrides = {f: best[f] for f in sweep.fields}
        line += f"; best {best['run']}: {best['final_collective_reward']:.1f} ({_shown(overrides)})"
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssdlib.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help=f"a packaged sweep ({', '.join(sweep_names())}) or a .toml spec path")
    parser.add_argument("--out", type=Path, required=True, help="the sweep folder (one run folder per run)")
    parser.add_argument("--address", default=None,
                        help="join this Ray cluster (e.g. auto) instead of starting a local Ray instance")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="CPUs of the local Ray instance (default: all of this machine's)")
    args = parser.parse_args(argv)
    if args.address is not None and args.num_cpus is not None:
        parser.error("--num-cpus sizes a local Ray instance; a cluster joined with --address has its own")
    start = time.monotonic()
    try:
        sweep = load_sweep(args.spec)
        summary = run_sweep(sweep, args.out, args.address, args.num_cpus, echo=lambda line: print(line, flush=True))
    except (ValueError, SweepError) as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        sys.exit("interrupted: rerun the same command to resume (finished runs are kept)")
    failed = summary.run[summary.status == "failed"].tolist()
    print(f"wall time {time.monotonic() - start:.0f} s")
    if failed:
        sys.exit(f"error: {len(failed)} run(s) failed: {', '.join(failed)} (see their log.txt); "
                 "rerun the same command to retry them")


if __name__ == "__main__":
    main()
