"""The uniform-random policy: the floor a trained agent must beat, computed in one place.

    python -m ssdlib.experiments.random_policy              # the floor of every game, as CSV
    python -m ssdlib.experiments.random_policy cleanup --games 32 --episodes 2

With its defaults (GAMES games, EPISODES episode each, seed SEED, each game's own episode
length, on the CPU) this prints the table that the book's environments chapter writes to
`results/tables/environments/random_policy.csv` and that the README quotes, so the floor has
one value wherever it is shown. The defaults are fixed rather than taken from a training
preset so that every preset's book and the README show the same numbers; 128 games put the
standard error of the mean collective reward near 100 and play Cleanup and Harvest in under
20 s on one CPU core (the test that checks the README replays them).
"""

import argparse
import sys

import numpy as np
import pandas as pd
import torch

from .. import metrics
from ..envs import ENVIRONMENTS, make_env

GAMES = 128  # games played at once
EPISODES = 1  # episodes played in each game, one after the other
SEED = 0  # seeds the games' resets and the actions

OUTCOMES = {
    "collective_reward": "collective reward",
    "equality": "equality",
    "apples": "apples eaten",
    "fire": "beams fired",
    "hits": "hits taken",
    "waste": "waste cells",
}


def random_policy_stats(game: str, num_games: int = GAMES, episodes: int = EPISODES, seed: int = SEED,
                        device: str = "cpu", **options) -> pd.DataFrame:
    """Uniformly random actions in `num_games` games for `episodes` episodes each: one row per
    game and episode (episode-major).

    Columns: game, seed, episode, collective_reward, equality (1 − Gini), apples (eaten, all
    agents), fire and hits (penalty beams fired and taken), waste (mean waste cells over the
    episode; 0 outside Cleanup), return_0 .. return_{N-1}. `options` go to `make_env` (e.g. a
    shorter horizon). The draws depend on the device: the CPU default gives the published floor.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = make_env(game, num_envs=num_games, device=device, seed=seed, **options)
    gen = torch.Generator(device=env.device).manual_seed(seed)
    n = env.num_agents
    frames = []
    for episode in range(episodes):
        returns = torch.zeros(num_games, n, device=env.device)
        counts = {k: torch.zeros(num_games, dtype=torch.long, device=env.device) for k in ("apples", "fire", "hits")}
        waste = torch.zeros(num_games, device=env.device)
        for _ in range(env.horizon):  # the env resets every game after the last step
            waste += env.num_waste()  # the state each step starts from: steps 0 .. horizon-1
            actions = torch.randint(0, env.num_actions, (num_games, n), generator=gen, device=env.device)
            _, rewards, _, info = env.step(actions)
            returns += rewards
            for k in counts:
                counts[k] += info[k].sum(1)
        r = returns.cpu().numpy()
        frames.append(pd.DataFrame({
            "game": game,
            "seed": seed,
            "episode": episode,
            "collective_reward": metrics.collective_reward(r),
            "equality": metrics.equality(r),
            **{k: v.cpu().numpy() for k, v in counts.items()},
            "waste": (waste / env.horizon).cpu().numpy(),
            **{f"return_{k}": r[:, k] for k in range(n)},
        }))
    return pd.concat(frames, ignore_index=True)


def random_policy_returns(game: str, num_games: int = GAMES, episodes: int = EPISODES, seed: int = SEED,
                          device: str = "cpu", **options) -> np.ndarray:
    """Per-agent episode returns [episodes * num_games, N] of `random_policy_stats`' episodes."""
    stats = random_policy_stats(game, num_games, episodes, seed, device, **options)
    return stats.filter(regex=r"^return_\d+$").to_numpy()


def summarise(stats: pd.DataFrame, formatted: bool = False) -> pd.DataFrame:
    """Mean and standard deviation over episodes of each outcome, one row per game name.

    Numeric columns "games" (episodes played), "OUTCOME_mean", "OUTCOME_std" by default: the
    floor's table. With `formatted`, one "mean ± sd" text column per outcome, named for readers.
    """
    groups = stats.groupby("game", sort=False)
    table = groups[list(OUTCOMES)].agg(["mean", "std"])
    if formatted:
        table = pd.DataFrame({
            label: [f"{m:.3g} ± {sd:.2g}" if abs(m) < 10 else f"{m:.1f} ± {sd:.1f}"
                    for m, sd in zip(table[(key, "mean")], table[(key, "std")].fillna(0.0))]
            for key, label in OUTCOMES.items()
        }, index=table.index)
    else:
        table.columns = [f"{key}_{stat}" for key, stat in table.columns]
    table.insert(0, "games", groups.size())
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssdlib.experiments.random_policy",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("games", nargs="*", metavar="GAME", help=f"games to play: {', '.join(ENVIRONMENTS)}; none: all")
    parser.add_argument("--games", dest="num_games", type=int, default=GAMES, metavar="N", help="games played at once")
    parser.add_argument("--episodes", type=int, default=EPISODES, help="episodes played in each game")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    unknown = [g for g in args.games if g not in ENVIRONMENTS]
    if unknown:
        parser.error(f"unknown game(s) {unknown}; choose from {list(ENVIRONMENTS)}")
    try:
        stats = pd.concat([random_policy_stats(g, args.num_games, args.episodes, args.seed)
                           for g in args.games or ENVIRONMENTS], ignore_index=True)
    except ValueError as error:
        parser.error(str(error))
    summarise(stats).to_csv(sys.stdout)


if __name__ == "__main__":
    main()
