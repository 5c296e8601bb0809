"""The uniform-random policy's collective reward: the floor a trained baseline must beat.

    python -m ssdlib.experiments.random_policy cleanup --games 64 --episodes 2
"""

import argparse
import json

import numpy as np
import torch

from .. import metrics
from ..envs import ENVIRONMENTS, make_env


def random_policy_returns(name: str, num_games: int = 64, episodes: int = 1, seed: int = 0,
                          device: str = "cpu", **options) -> np.ndarray:
    """Per-agent episode returns [episodes * num_games, N] under uniformly random actions."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = make_env(name, num_envs=num_games, device=device, seed=seed, **options)
    gen = torch.Generator(device=env.device).manual_seed(seed)
    returns, total = [], torch.zeros(num_games, env.num_agents, device=env.device)
    while len(returns) < episodes:
        actions = torch.randint(0, env.num_actions, (num_games, env.num_agents), generator=gen, device=env.device)
        _, rewards, done, _ = env.step(actions)
        total += rewards
        if env.t == 0:  # every game reached the horizon
            returns.append(total.cpu().numpy())
            total = torch.zeros_like(total)
    return np.concatenate(returns)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssdlib.experiments.random_policy", description=__doc__.split("\n\n")[0])
    parser.add_argument("env", choices=sorted(ENVIRONMENTS))
    parser.add_argument("--games", type=int, default=64)
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    returns = random_policy_returns(args.env, args.games, args.episodes, args.seed)
    collective = metrics.collective_reward(returns)
    print(json.dumps({"env": args.env, "policy": "uniform random", "games": len(returns),
                      "collective_reward_mean": float(collective.mean()),
                      "collective_reward_std": float(collective.std()),
                      "equality_mean": float(metrics.equality(returns).mean())}))


if __name__ == "__main__":
    main()
