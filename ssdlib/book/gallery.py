"""Render the three games to PNG images (the main job until the book exists).

    python -m ssdlib.book.gallery --out results/envs

Each game is shown at reset and after a few steps of a uniformly random policy, so beams
and agents are visible.
"""

import argparse
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a command-line tool that only writes files
import matplotlib.pyplot as plt
import numpy as np
import torch

from ..envs import ENVIRONMENTS, make_env


def upscale(rgb: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of an [H, W, 3] image, so cells stay crisp."""
    return rgb.repeat(scale, axis=0).repeat(scale, axis=1)


def save_png(rgb: np.ndarray, path: Path, scale: int = 16) -> Path:
    """Write `rgb` atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    plt.imsave(tmp, upscale(rgb, scale))
    os.replace(tmp, path)
    return path


def render_games(out: Path, steps: int = 8, seed: int = 0) -> list[Path]:
    """PNG of every game at reset and after `steps` random steps; returns the paths."""
    paths = []
    gen = torch.Generator().manual_seed(seed)
    for name in ENVIRONMENTS:
        env = make_env(name, num_envs=1, seed=seed)
        env.reset()
        paths.append(save_png(env.render(0), out / f"{name}_reset.png"))
        for _ in range(steps):
            env.step(torch.randint(0, env.num_actions, (1, env.num_agents), generator=gen))
        paths.append(save_png(env.render(0), out / f"{name}_step{steps}.png"))
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssdlib.book.gallery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/envs"))
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in render_games(args.out, args.steps, args.seed):
        print(path)


if __name__ == "__main__":
    main()
