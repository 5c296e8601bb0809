"""Box Trapped evaluation (supplement section 3, Figures 12 and 13): does the opener open the box?

A trained run's policies are rolled out, sampling and without learning, on fresh games:
`num_trajectories` games per seed for one full episode. Every step of every trajectory is
recorded: whether the opener (agent 0) chose OPEN, whether that opened the still-closed box,
the opener's influence reward c^0 at that step (raw, before the weight β and the curriculum;
NaN where the condition computes no influence) and the extrinsic rewards.

    python -m ssdlib.experiments.box_trapped results/runs/box_trapped_influence/cpu --trajectories 100 --out eval.parquet

The paper: an A3C opener opens the box in 0% of trajectories, an influence opener in 88%,
mostly within the first few steps, with a spike of influence reward at the opening step.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..envs.geometry import OPEN
from ..runs import atomic_write
from ..training.replay import load_trainer, replay_view
from ..training.trainer import Trainer

COLUMNS = ("seed", "trajectory", "step", "open_action", "opened", "box_was_open", "influence", "reward_0", "reward_1")


@torch.no_grad()
def evaluate_openers(trainer: Trainer, num_trajectories: int = 100, seed: int = 0) -> pd.DataFrame:
    """Roll out the trainer's policies (sampling, no learning) on `num_trajectories` fresh
    Box Trapped games per seed of the trainer for one episode (the env's horizon), all seeds
    and trajectories at once. One row per seed, trajectory and step:

    - open_action: the opener (agent 0) chose OPEN;
    - opened: that OPEN opened the box (the env's info["open"]); at most once per trajectory;
    - box_was_open: the box was already open at the start of the step;
    - influence: the opener's influence reward c^0 of the step (raw; NaN without influence);
    - reward_0, reward_1: extrinsic rewards of the opener and the trapped agent.
    """
    if trainer.config.env != "box_trapped":
        raise ValueError(f"evaluate_openers needs a box_trapped run, got env {trainer.config.env!r}")
    if isinstance(num_trajectories, bool) or not isinstance(num_trajectories, int) or num_trajectories < 1:
        raise ValueError(f"num_trajectories must be a positive int, got {num_trajectories!r}")
    view = replay_view(trainer, num_trajectories, seed)
    env, horizon = view.env, view.env.horizon
    has_influence = trainer.config.reward.scheme == "influence"
    steps = {key: [] for key in ("open_action", "opened", "box_was_open", "influence", "rewards")}
    for t in range(horizon):
        steps["box_was_open"].append(env.state.box_open.clone())
        out, extrinsic, done, info = view.play()
        actions = view.to_games(out.transition.actions)  # [B, N]
        steps["open_action"].append(actions[:, 0] == OPEN)
        steps["opened"].append(info["open"][:, 0].bool())
        if has_influence:
            steps["influence"].append(out.influence.reward[:, 0])
        steps["rewards"].append(extrinsic)
        if bool(done[0]) != (t == horizon - 1):
            raise RuntimeError(f"episode ended at step {t}, expected at {horizon - 1}")

    def flat(xs: list[torch.Tensor]) -> np.ndarray:
        """H steps of [B, ...] -> rows ordered by game b = s * T + trajectory, then step."""
        return torch.stack(xs).transpose(0, 1).reshape(-1, *xs[0].shape[1:]).cpu().numpy()

    s, n_traj = trainer.S, num_trajectories
    rewards = flat(steps["rewards"]).astype(np.float64)
    influence = flat(steps["influence"]).astype(np.float64) if has_influence else np.full(s * n_traj * horizon, np.nan)
    return pd.DataFrame({
        "seed": np.repeat(np.asarray(trainer.seeds, dtype=np.int64), n_traj * horizon),
        "trajectory": np.tile(np.repeat(np.arange(n_traj, dtype=np.int64), horizon), s),
        "step": np.tile(np.arange(horizon, dtype=np.int64), s * n_traj),
        "open_action": flat(steps["open_action"]),
        "opened": flat(steps["opened"]),
        "box_was_open": flat(steps["box_was_open"]),
        "influence": influence,
        "reward_0": rewards[:, 0],
        "reward_1": rewards[:, 1],
    }, columns=list(COLUMNS))


def open_rate_per_step(df: pd.DataFrame) -> pd.DataFrame:
    """Figure 12: per seed and step, `opens` (OPEN actions that opened the box), `open_actions`
    (all OPEN actions, including those on an already open box) and the number of trajectories."""
    out = df.groupby(["seed", "step"], sort=True).agg(
        opens=("opened", "sum"), open_actions=("open_action", "sum"), trajectories=("trajectory", "nunique"))
    return out.astype(np.int64).reset_index()


def open_fraction(df: pd.DataFrame) -> pd.Series:
    """Fraction of trajectories in which the box was opened, per seed (a Series indexed by seed)."""
    per_trajectory = df.groupby(["seed", "trajectory"])["opened"].any()
    return per_trajectory.groupby(level="seed").mean().astype(np.float64).rename("open_fraction")


def opening_steps(df: pd.DataFrame) -> pd.DataFrame:
    """When in the episode the box was opened, per seed: trajectories opened, and the median,
    first and last step of opening among them (NaN where none opened). The paper's influence
    opener opens in the first steps; this says whether ours does."""
    steps = df.loc[df["opened"], ["seed", "step"]]
    seeds = pd.Index(sorted(df["seed"].unique()), name="seed")
    out = steps.groupby("seed")["step"].agg(opened="size", median_step="median", first_step="min", last_step="max")
    out = out.reindex(seeds)
    out["opened"] = out["opened"].fillna(0).astype(np.int64)
    return out.reset_index()


def influence_trajectory(df: pd.DataFrame, seed: int, trajectory: int) -> pd.DataFrame:
    """Figure 13: one trajectory's steps with the opener's influence reward, its OPEN actions
    and the rewards, ordered by step."""
    rows = df[(df["seed"] == seed) & (df["trajectory"] == trajectory)]
    if rows.empty:
        raise KeyError(f"no trajectory {trajectory} of seed {seed} in the evaluation")
    columns = ["step", "influence", "open_action", "opened", "reward_0", "reward_1"]
    return rows.sort_values("step")[columns].reset_index(drop=True)


def plot_open_counts(ax, per_step: pd.DataFrame, label: str, colour: str) -> None:
    """Figure 12: box openings at each trajectory step, mean over seeds (range shaded)."""
    table = per_step.pivot(index="step", columns="seed", values="opens")
    ax.plot(table.index, table.mean(axis=1), color=colour, label=label, drawstyle="steps-mid")
    ax.fill_between(table.index, table.min(axis=1), table.max(axis=1), color=colour, alpha=0.2, step="mid")
    ax.set_xlabel("trajectory step")
    ax.set_ylabel(f"box openings (of {int(per_step['trajectories'].iloc[0])} trajectories)")


def plot_influence_trajectory(ax, trajectory: pd.DataFrame, colour: str) -> None:
    """Figure 13: the opener's influence reward along one trajectory, the opening marked."""
    ax.plot(trajectory["step"], trajectory["influence"], color=colour)
    for step in trajectory.loc[trajectory["opened"], "step"]:
        ax.axvline(step, color="0.3", linestyle="--", linewidth=1, label=f"box opened (step {step})")
    ax.set_xlabel("trajectory step")
    ax.set_ylabel("influence reward $c^0_t$")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssdlib.experiments.box_trapped", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a trained box_trapped run folder")
    parser.add_argument("--trajectories", type=int, default=100, help="trajectories per seed")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation games and sampling")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, required=True, help="parquet file for the per-step evaluation")
    args = parser.parse_args(argv)
    try:
        trainer = load_trainer(args.run_dir, args.device)
        df = evaluate_openers(trainer, args.trajectories, args.seed)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    atomic_write(args.out, lambda tmp: df.to_parquet(tmp, index=False))
    fractions = open_fraction(df)
    for seed, fraction in fractions.items():
        opened = df[(df["seed"] == seed) & df["opened"]]
        first = f", median open step {opened['step'].median():.0f}" if len(opened) else ""
        print(f"seed {seed}: box opened in {fraction:.0%} of {args.trajectories} trajectories{first}")
    print(args.out)


if __name__ == "__main__":
    main()
