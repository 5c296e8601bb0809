"""Benchmarks that print their figures as JSON lines.

    python -m ssdlib.bench env --env cleanup --num-envs 1024 --steps 300 --device cpu
    python -m ssdlib.bench env --env harvest --sweep 1,64,256,1024,4096
    python -m ssdlib.bench env --env physical_deception --sweep 1,64,256,1024,4096
    python -m ssdlib.bench env --env cleanup --sweep 1024,4096,16384 --device cuda --capture
    python -m ssdlib.bench train --config cleanup_a3c cleanup_influence --device cpu --num-envs 64 --seeds 1 --iterations 5
    python -m ssdlib.bench train --config cleanup_a3c cleanup_influence --num-envs 256 --against 551706a --repeats 5

`env`: every run also measures a baseline in the same process: the same env stepping one game at a
time (num_envs=1), which is how the reference implementation runs. Speeds are reported with
their ratio to that baseline. The reference implementation's own published speed is quoted
beside them, labelled as quoted, not measured here. Physical deception is also measured against
mpe2's simple_adversary_v3 (its reference), stepped one game at a time in the same run.

`train`: whole training iterations (collect a rollout + one update) of the Trainer, per
config, after one warm-up iteration; each config's speed is also given as its ratio to the
first config's, measured in the same run (the baseline). With `--against REVISION` each config
is instead timed with that git revision's code and with this tree's, each in a fresh process,
in `--repeats` old/new pairs in the same run; the speedup is the median of the pairs' ratios.
"""

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from .envs import ENVIRONMENTS, PARTICLE_ENVIRONMENTS, make_env
from .hardware import device_name
from .training.capture import CapturedEnv
from .training.conditions.config import load_config
from .training.conditions.presets import PAPER_STEPS, Preset
from .training.trainer import Trainer

# env steps/s of the public reference implementation, one CPU core, 5 agents (quoted, issue 2)
REFERENCE_QUOTED = {"cleanup": 1640.0, "harvest": 1200.0}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_env(name: str, num_envs: int, steps: int, device: str, num_agents: int | None, seed: int = 0,
             capture: bool = False) -> dict:
    """Step `num_envs` games `steps` times under uniformly random actions (drawn on the
    device beforehand, outside the timed loop), observations produced every step. With
    `capture`, through `CapturedEnv` (a grid game's step replayed as one CUDA graph) and
    without the action range check (a read of the device); otherwise with it."""
    env = make_env(name, num_envs=num_envs, num_agents=num_agents, device=device, seed=seed)
    stepper = CapturedEnv(env) if capture else env
    dev = env.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    pool = torch.randint(0, env.num_actions, (16, num_envs, env.num_agents), device=dev, generator=gen)
    options = {"check_range": False} if capture else {}
    env.reset()
    for i in range(5):  # warm-up: allocator, lazy init, the capture
        stepper.step(pool[i % 16], **options)
    _sync(dev)
    start = time.perf_counter()
    for i in range(steps):
        obs, rewards, done, info = stepper.step(pool[i % 16], **options)
    _sync(dev)
    seconds = time.perf_counter() - start
    env_steps = num_envs * steps / seconds
    return {
        "env": name,
        "num_envs": num_envs,
        "num_agents": env.num_agents,
        "steps": steps,
        "capture": capture,
        "seconds": round(seconds, 4),
        "env_steps_per_s": round(env_steps, 1),
        "agent_steps_per_s": round(env_steps * env.num_agents, 1),
        "state_bytes_per_game": env.state_bytes_per_game(),
        "obs_bytes_per_game": sum(t[0].numel() * t.element_size() for t in obs),
    }


def time_mpe2(steps: int, num_agents: int, seed: int = 0) -> dict:
    """Step mpe2's simple_adversary_v3 parallel env (its defaults, N = num_agents - 1) one game
    at a time, as PettingZoo users run it, `steps` times under uniformly random actions drawn
    beforehand, resetting it when an episode ends (our env resets inside its step too)."""
    try:
        from mpe2 import simple_adversary_v3
    except ImportError:
        raise ValueError("--env physical_deception is compared with mpe2: pip install -e '.[test]'") from None
    env = simple_adversary_v3.parallel_env(N=num_agents - 1)
    pool = np.random.default_rng(seed).integers(0, env.action_space(env.possible_agents[0]).n, (16, num_agents))
    actions = [dict(zip(env.possible_agents, row.tolist())) for row in pool]
    env.reset(seed=seed)
    for i in range(5):  # warm-up, as in time_env
        env.step(actions[i])
    start = time.perf_counter()
    for i in range(steps):
        env.step(actions[i % 16])
        if not env.agents:
            env.reset()
    seconds = time.perf_counter() - start
    return {"mpe2_version": version("mpe2"), "mpe2_steps": steps, "mpe2_env_steps_per_s": round(steps / seconds, 1)}


def _header(bench: str, device: str) -> dict:
    """What every benchmark line says about where it ran."""
    return {
        "bench": bench,
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def bench_env(args: argparse.Namespace) -> list[dict]:
    sizes = [int(x) for x in args.sweep.split(",")] if args.sweep else [args.num_envs]
    if any(size < 1 for size in sizes):
        raise ValueError(f"--sweep/--num-envs must be positive, got {sizes}")
    common = _header("env", args.device)
    baseline = time_env(args.env, 1, args.baseline_steps, args.device, args.num_agents)
    mpe2 = time_mpe2(args.baseline_steps, baseline["num_agents"]) if args.env in PARTICLE_ENVIRONMENTS else None
    rows = []
    for size in sizes:
        row = {**common, **time_env(args.env, size, args.steps, args.device, args.num_agents, capture=args.capture)}
        row["baseline_single_game_env_steps_per_s"] = baseline["env_steps_per_s"]
        row["speedup_vs_single_game"] = round(row["env_steps_per_s"] / baseline["env_steps_per_s"], 2)
        if args.env in REFERENCE_QUOTED and row["num_agents"] == 5:
            row["reference_quoted_env_steps_per_s"] = REFERENCE_QUOTED[args.env]
            row["ratio_vs_reference_quoted"] = round(row["env_steps_per_s"] / REFERENCE_QUOTED[args.env], 1)
        if mpe2 is not None:
            row.update(mpe2, ratio_vs_mpe2=round(row["env_steps_per_s"] / mpe2["mpe2_env_steps_per_s"], 2))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def time_train(config_name: str, num_envs: int, seeds: int, iterations: int, device: str,
               rollout_length: int | None = None, horizon: int | None = None, capture: bool = False) -> dict:
    """Train `config_name` with `num_envs` games per seed and `seeds` seeds (0..seeds-1) for
    one warm-up iteration, then time `iterations` iterations (collect + update). The preset
    spans the paper's 5e8 steps, so learning-rate and curriculum schedules are the paper's."""
    config = load_config(config_name)
    if rollout_length is not None:
        config = dataclasses.replace(config, optim=dataclasses.replace(config.optim, rollout_length=rollout_length))
    preset = Preset("bench", total_steps=int(PAPER_STEPS), num_envs=num_envs, horizon=horizon)
    trainer = Trainer(config, preset, list(range(seeds)), device, capture=capture)
    dev = trainer.device
    trainer.update(trainer.collect())  # warm-up: allocator, lazy init
    _sync(dev)
    collect_s = update_s = 0.0
    for _ in range(iterations):
        start = time.perf_counter()
        batch = trainer.collect()
        _sync(dev)
        middle = time.perf_counter()
        trainer.update(batch)
        _sync(dev)
        collect_s += middle - start
        update_s += time.perf_counter() - middle
    seconds = collect_s + update_s
    t_len = config.optim.rollout_length
    env_steps = seeds * num_envs * t_len * iterations / seconds
    return {
        "config": config.name,
        "algorithm": config.optim.algorithm,
        "reward_scheme": config.reward.scheme,
        "env": config.env,
        "num_envs": num_envs,
        "seeds": seeds,
        "num_agents": config.num_agents,
        "rollout_length": t_len,
        "capture": capture,
        "iterations": iterations,
        "seconds": round(seconds, 4),
        "collect_seconds": round(collect_s, 4),
        "update_seconds": round(update_s, 4),
        "env_steps_per_s": round(env_steps, 1),
        "agent_steps_per_s": round(env_steps * config.num_agents, 1),
    }


MEDIAN_KEYS = ("seconds", "collect_seconds", "update_seconds", "env_steps_per_s", "agent_steps_per_s")


def _median(rows: tuple[dict, ...], key: str) -> float:
    return round(float(statistics.median(row[key] for row in rows)), 4)


def export_revision(revision: str, into: Path) -> str:
    """The tree of git `revision` of this repository extracted into `into`; returns the
    revision's full commit hash. An unknown revision is an error naming it."""
    repo = Path(__file__).resolve().parent.parent
    found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", f"{revision}^{{commit}}"],
                           capture_output=True, text=True, check=False)
    if found.returncode != 0:
        raise ValueError(f"unknown git revision {revision!r} in {repo}: {found.stderr.strip()}")
    commit = found.stdout.strip()
    archive = subprocess.run(["git", "-C", str(repo), "archive", commit, "ssdlib"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return commit


def _time_in_process(library_root: Path, args: argparse.Namespace, config: str) -> dict:
    """One config's `bench train` line from a fresh Python process importing the ssdlib found
    in `library_root` (this tree, or an exported revision)."""
    command = [sys.executable, "-m", "ssdlib.bench", "train", "--config", config, "--num-envs", str(args.num_envs),
               "--seeds", str(args.seeds), "--iterations", str(args.iterations), "--device", args.device]
    for flag, value in (("--rollout-length", args.rollout_length), ("--horizon", args.horizon)):
        if value is not None:
            command += [flag, str(value)]
    env = {**os.environ, "PYTHONPATH": str(library_root)}
    done = subprocess.run(command, cwd=library_root, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench train of {config} with the ssdlib in {library_root} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_train_against(args: argparse.Namespace) -> list[dict]:
    """Each config timed with this tree's code and with git revision `args.against`'s, each in
    its own fresh process, old then new, `args.repeats` times in turn (old new old new ...),
    config after config. Each pair meets the same machine; the speedup is the median of the
    pairs' ratios, so that the machine's drift between pairs (on a shared VM, 1.2-1.7x for the
    same code within minutes) does not move it. Speeds and times are the medians too."""
    if args.repeats < 1:
        raise ValueError(f"--repeats must be positive, got {args.repeats}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ssdlib-bench-") as old_root:
        commit = export_revision(args.against, Path(old_root))
        here = Path(__file__).resolve().parent.parent
        for name in args.config:
            pairs = [(_time_in_process(Path(old_root), args, name), _time_in_process(here, args, name))
                     for _ in range(args.repeats)]
            olds, news = zip(*pairs)
            ratios = [new["env_steps_per_s"] / old["env_steps_per_s"] for old, new in pairs]
            row = {**news[-1], **{key: _median(news, key) for key in MEDIAN_KEYS},
                   "against_revision": commit[:12], "repeats": args.repeats,
                   "against_env_steps_per_s": _median(olds, "env_steps_per_s"),
                   "against_collect_seconds": _median(olds, "collect_seconds"),
                   "against_update_seconds": _median(olds, "update_seconds"),
                   "speedup_vs_revision": round(statistics.median(ratios), 3),
                   "speedup_min": round(min(ratios), 3), "speedup_max": round(max(ratios), 3)}
            row.pop("baseline_config", None)
            row.pop("ratio_vs_first", None)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def bench_train(args: argparse.Namespace) -> list[dict]:
    for name in ("num_envs", "seeds", "iterations"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.rollout_length is not None and args.rollout_length < 1:
        raise ValueError(f"--rollout-length must be positive, got {args.rollout_length}")
    if args.against:
        if args.capture:
            raise ValueError("--capture cannot be combined with --against (older revisions have no captured step)")
        return bench_train_against(args)
    common = _header("train", args.device)
    rows = []
    for name in args.config:
        row = {**common, **time_train(name, args.num_envs, args.seeds, args.iterations, args.device,
                                      args.rollout_length, args.horizon, args.capture)}
        first = rows[0] if rows else row
        row["baseline_config"] = first["config"]
        row["ratio_vs_first"] = round(row["env_steps_per_s"] / first["env_steps_per_s"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ssdlib.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    env = sub.add_parser("env", help="env steps per second of the batched environments")
    env.add_argument("--env", default="cleanup", choices=sorted(ENVIRONMENTS) + sorted(PARTICLE_ENVIRONMENTS))
    env.add_argument("--num-envs", type=int, default=1024)
    env.add_argument("--num-agents", type=int, default=None)
    env.add_argument("--steps", type=int, default=300)
    env.add_argument("--baseline-steps", type=int, default=300,
                     help="steps of the one-game baselines (ours, and mpe2's for physical_deception)")
    env.add_argument("--device", default="cpu")
    env.add_argument("--sweep", default="", help="comma-separated num_envs values, e.g. 1,64,1024")
    env.add_argument("--capture", action="store_true",
                     help="step through CapturedEnv (one CUDA graph a step; grid games only), no range check")
    train = sub.add_parser("train", help="env steps per second of whole training iterations (collect + update)")
    train.add_argument("--config", nargs="+", default=["cleanup_a3c", "cleanup_influence"],
                       help="configs to time; the first is the baseline of ratio_vs_first")
    train.add_argument("--device", default="cpu")
    train.add_argument("--num-envs", type=int, default=64, help="games per seed")
    train.add_argument("--seeds", type=int, default=1, help="number of seeds trained at once (0..seeds-1)")
    train.add_argument("--iterations", type=int, default=5, help="timed iterations, after one warm-up")
    train.add_argument("--rollout-length", type=int, default=None, help="override the config's rollout length")
    train.add_argument("--horizon", type=int, default=None, help="override the game's episode length")
    train.add_argument("--capture", action="store_true", help="act and step the games through captured CUDA graphs (Trainer(capture=True))")
    train.add_argument("--against", metavar="REVISION", default=None,
                       help="also time each config with the ssdlib of this git revision, in the same run "
                            "(fresh processes, old then new), and give the speedup")
    train.add_argument("--repeats", type=int, default=1,
                       help="with --against: old/new pairs to time; the speedup is the median of their ratios")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.what == "env":
            bench_env(args)
        elif args.what == "train":
            bench_train(args)
    except ValueError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
