"""Benchmarks that print their figures as JSON lines.

    python -m ssdlib.bench env --env cleanup --num-envs 1024 --steps 300 --device cpu
    python -m ssdlib.bench env --env harvest --sweep 1,64,256,1024,4096

Every run also measures a baseline in the same process: the same env stepping one game at a
time (num_envs=1), which is how the reference implementation runs. Speeds are reported with
their ratio to that baseline. The reference implementation's own published speed is quoted
beside them, labelled as quoted, not measured here.
"""

import argparse
import json
import sys
import time

import torch

from .envs import ENVIRONMENTS, make_env
from .hardware import device_name

# env steps/s of the public reference implementation, one CPU core, 5 agents (quoted, issue 2)
REFERENCE_QUOTED = {"cleanup": 1640.0, "harvest": 1200.0}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_env(name: str, num_envs: int, steps: int, device: str, num_agents: int | None, seed: int = 0) -> dict:
    """Step `num_envs` games `steps` times under uniformly random actions (drawn on the
    device beforehand, outside the timed loop), observations produced every step."""
    env = make_env(name, num_envs=num_envs, num_agents=num_agents, device=device, seed=seed)
    dev = env.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    pool = torch.randint(0, env.num_actions, (16, num_envs, env.num_agents), device=dev, generator=gen)
    env.reset()
    for i in range(5):  # warm-up: allocator, lazy init
        env.step(pool[i % 16])
    _sync(dev)
    start = time.perf_counter()
    for i in range(steps):
        obs, rewards, done, info = env.step(pool[i % 16])
    _sync(dev)
    seconds = time.perf_counter() - start
    env_steps = num_envs * steps / seconds
    return {
        "env": name,
        "num_envs": num_envs,
        "num_agents": env.num_agents,
        "steps": steps,
        "seconds": round(seconds, 4),
        "env_steps_per_s": round(env_steps, 1),
        "agent_steps_per_s": round(env_steps * env.num_agents, 1),
        "state_bytes_per_game": env.state_bytes_per_game(),
        "obs_bytes_per_game": obs.image[0].numel() + 8 * obs.actions[0].numel() + obs.visible[0].numel(),
    }


def bench_env(args: argparse.Namespace) -> list[dict]:
    sizes = [int(x) for x in args.sweep.split(",")] if args.sweep else [args.num_envs]
    if any(size < 1 for size in sizes):
        raise ValueError(f"--sweep/--num-envs must be positive, got {sizes}")
    common = {
        "bench": "env",
        "device": str(args.device),
        "device_name": device_name(args.device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    baseline = time_env(args.env, 1, args.baseline_steps, args.device, args.num_agents)
    rows = []
    for size in sizes:
        row = {**common, **time_env(args.env, size, args.steps, args.device, args.num_agents)}
        row["baseline_single_game_env_steps_per_s"] = baseline["env_steps_per_s"]
        row["speedup_vs_single_game"] = round(row["env_steps_per_s"] / baseline["env_steps_per_s"], 2)
        if args.env in REFERENCE_QUOTED and row["num_agents"] == 5:
            row["reference_quoted_env_steps_per_s"] = REFERENCE_QUOTED[args.env]
            row["ratio_vs_reference_quoted"] = round(row["env_steps_per_s"] / REFERENCE_QUOTED[args.env], 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssdlib.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    env = sub.add_parser("env", help="env steps per second of the batched environments")
    env.add_argument("--env", default="cleanup", choices=sorted(ENVIRONMENTS))
    env.add_argument("--num-envs", type=int, default=1024)
    env.add_argument("--num-agents", type=int, default=None)
    env.add_argument("--steps", type=int, default=300)
    env.add_argument("--baseline-steps", type=int, default=300, help="steps of the one-game baseline")
    env.add_argument("--device", default="cpu")
    env.add_argument("--sweep", default="", help="comma-separated num_envs values, e.g. 1,64,1024")
    args = parser.parse_args(argv)
    try:
        if args.what == "env":
            bench_env(args)
    except ValueError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
