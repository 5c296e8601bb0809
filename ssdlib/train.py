"""Train one condition for several seeds in one process, resumably.

    python -m ssdlib.train cleanup_influence --preset cpu --seeds 0-4 --device cpu --out results/runs/x

Rerunning the same command after an interruption resumes from the last checkpoint; a run
folder holding a different config is an error (use another --out, or --restart).
"""

import argparse
import json
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch

from .hardware import resolve_device
from .runs import atomic_write, git_commit, provenance, write_json, write_metrics
from .training.conditions.config import load_config
from .training.conditions.presets import PRESETS, get_preset
from .training.state import load_checkpoint
from .training.trainer import Trainer


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '1,3,7' -> [1, 3, 7]; '5' -> [5]."""
    try:
        if "-" in text.strip("-"):
            lo, hi = (int(x) for x in text.split("-"))
            seeds = list(range(lo, hi + 1))
        else:
            seeds = [int(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"bad --seeds {text!r}: use a range like 0-4 or a list like 0,2,5") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"bad --seeds {text!r}: need distinct non-negative seeds")
    return seeds


def resolved_config(config_name: str, preset_name: str, seeds: list[int]) -> dict:
    """What a run folder's config.json holds: the config, the preset resolved for its game, the seeds."""
    config = load_config(config_name)
    preset = get_preset(preset_name, config.env)
    return {"config": config.to_dict(), "preset": preset.record(), "seeds": seeds}


class _NoBar:
    """Stands in for a tqdm bar without progress (tqdm is then not imported: ssdlib.gpu_run
    runs where only torch, numpy, pandas, pyarrow and matplotlib are installed)."""

    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def train(config_name: str, preset_name: str, seeds: list[int], device: str, out: Path,
          restart: bool = False, progress: bool = True, max_iterations: int | None = None,
          deadline: float | None = None, capture: bool = False) -> Path:
    """Train (or resume) a run into `out`; returns `out`. `max_iterations` stops early
    (for tests of resumption), leaving a checkpoint. `deadline` (a `time.monotonic()` time)
    stops early too, with a checkpoint saved before it: before each iteration, when the
    longest of the last iterations plus the last save would end past it. With a deadline the
    checkpoint is saved every `checkpoint_seconds`, mid-episode too (a short slot may be cut);
    at an episode's start it stops unless the whole episode would end before the deadline, so
    that a slot's last checkpoint is, where the slot allows, one without recurrent memory
    (`TrainingState.checkpoint`: 40 instead of 53 MB for 5 seeds of 512 Cleanup games).
    `capture`: act and step the games through captured CUDA graphs (`Trainer(capture=True)`; recorded in the
    provenance, since A2C then learns from a re-evaluation, equal to float tolerance)."""
    resolved = resolved_config(config_name, preset_name, seeds)
    config = load_config(config_name)
    preset = get_preset(preset_name, config.env)
    checkpoint = out / "checkpoint.pt"
    if (out / "config.json").is_file() and not restart:
        previous = json.loads((out / "config.json").read_text())
        if previous != json.loads(json.dumps(resolved, default=str)):
            raise ValueError(f"run folder {str(out)!r} holds a different config; use another --out or --restart")
    if restart:
        for name in ("checkpoint.pt", "metrics.parquet", "done", "provenance.json"):
            (out / name).unlink(missing_ok=True)
    write_json(out / "config.json", resolved)

    commit = git_commit()  # of the code this process imported, not of the tree at a later save
    trainer = Trainer(config, preset, seeds, device, capture=capture)
    if checkpoint.is_file():
        trainer.state.restore(load_checkpoint(checkpoint, trainer.device))
    if (out / "done").is_file():
        return out

    def save() -> None:
        nonlocal save_seconds
        started = time.monotonic()
        write_metrics(out / "metrics.parquet", trainer.episodes)
        atomic_write(checkpoint, lambda tmp: torch.save(trainer.state.checkpoint(), tmp))
        steps_per_s = trainer.env_steps * len(seeds) / max(trainer.state.wall_time, 1e-9)
        write_json(out / "provenance.json", provenance(
            device, git_commit=commit, env_steps_per_seed=trainer.env_steps, wall_time_s=trainer.state.wall_time,
            env_steps_per_s=steps_per_s, agent_steps_per_s=steps_per_s * config.num_agents,
            **({"captured_acting": True} if capture else {})))
        save_seconds = time.monotonic() - started

    if progress:
        from tqdm import tqdm
        bar = tqdm(total=preset.total_steps, initial=trainer.env_steps, unit="step",
                   desc=f"{config.name} [{preset.name}] seeds {seeds[0]}..{seeds[-1]}", dynamic_ncols=True)
    else:
        bar = _NoBar()
    recent: deque[float] = deque(maxlen=10 * len(seeds))
    durations: deque[float] = deque(maxlen=10)  # of the last iterations, for the deadline
    last_save, iterations, save_seconds = time.monotonic(), 0, 0.0
    episode_iterations = -(-trainer.env.horizon // config.optim.rollout_length)  # iterations an episode spans
    while trainer.env_steps < preset.total_steps:
        # at an episode's start, stop unless a whole episode fits: the memory is then the
        # initial one, which the checkpoint leaves out; elsewhere, unless one iteration fits
        ahead = episode_iterations if iterations and trainer.env.t == 0 else 1
        if deadline is not None and time.monotonic() + ahead * max(durations, default=0.0) + save_seconds > deadline:
            if iterations:
                save()
            bar.close()
            return out
        before, episodes_before = trainer.env_steps, len(trainer.episodes)
        started = time.monotonic()
        trainer.train_iteration()
        durations.append(time.monotonic() - started)
        iterations += 1
        recent.extend(row["collective_reward"] for row in trainer.episodes[episodes_before:])
        bar.update(trainer.env_steps - before)
        bar.set_postfix(steps_per_s=f"{trainer.env_steps * len(seeds) / max(trainer.state.wall_time, 1e-9):,.0f}",
                        collective=f"{np.mean(recent):.1f}" if recent else "-")
        finished_episode = len(trainer.episodes) > episodes_before
        if (finished_episode or deadline is not None) and time.monotonic() - last_save >= preset.checkpoint_seconds:
            save()
            last_save = time.monotonic()
        if max_iterations is not None and iterations >= max_iterations:
            save()
            bar.close()
            return out
    bar.close()
    save()
    atomic_write(out / "done", lambda tmp: Path(tmp).write_text("finished\n"))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssdlib.train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("config", help="a packaged config name (e.g. cleanup_influence) or a .toml path")
    parser.add_argument("--preset", default="smoke", help=f"training length and games per seed: {', '.join(PRESETS)}")
    parser.add_argument("--seeds", default="0", help="seeds trained together: a range like 0-4 or a list like 0,2,5")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N")
    parser.add_argument("--out", type=Path, default=None, help="run folder; None: results/runs/CONFIG/PRESET")
    parser.add_argument("--restart", action="store_true", help="discard an existing run in --out")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads; None: torch's choice")
    parser.add_argument("--capture", action="store_true",
                        help="act and step the games through captured CUDA graphs, one each per step "
                             "(eagerly through the same buffers off CUDA)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            sys.exit(f"error: --threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    try:
        seeds = parse_seeds(args.seeds)
        resolve_device(args.device)  # before anything is written
        out = args.out or Path("results/runs") / Path(args.config).stem / args.preset
        train(args.config, args.preset, seeds, args.device, out, args.restart, not args.no_progress,
              capture=args.capture)
    except ValueError as error:
        sys.exit(f"error: {error}")
    print(out)


if __name__ == "__main__":
    main()
