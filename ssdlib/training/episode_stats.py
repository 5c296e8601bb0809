"""Per-episode statistics: what a run's metrics.parquet holds, one row per seed and episode.

Accumulated on the device during an episode (all games end together, at the horizon) and
turned into rows, means over each seed's games, when it ends:
- extrinsic returns per agent, collective reward, equality, their product;
- events per agent (apples, fire, hits, clean, cleaned); Box Trapped's open rate and step;
- influence: `influence_k` the episode's sum of agent k's influence reward c^k; for agents
  that exert influence, `influence_mean_k` its mean per step of the non-negative divergence
  it exerts (KL or JSD, never PMI) and `influence_above_mean_k` the fraction of steps where
  that divergence is above its own episode mean in the same game (the paper's sparsity);
- each loss term by name, averaged over the updates made during the episode (per seed: the
  mean over its agents), MOA accuracy among them;
- `listening`: how much the agents that could listen depend on the others' actions (the
  norm of the action-specific input weights, `RecurrentCore.listening`), beside
  `listening_init`, its value at initialisation.
"""

import numpy as np
import torch
from torch import Tensor

from .. import metrics
from .influence_sources import InfluenceStep
from .layout import Layout

EPISODE_EVENTS = ("apples", "fire", "hits", "clean", "cleaned")


LOSS_TERMS = ("policy", "value", "entropy", "moa", "comm_policy", "comm_value", "comm_entropy")  # logged as loss_<name>


class EpisodeStats:
    def __init__(self, layout: Layout, device: torch.device, box_trapped: bool) -> None:
        self.layout, self.device, self.box_trapped = layout, device, box_trapped
        self.start()

    def start(self) -> None:
        """Empty accumulators for a new episode."""
        shape = (self.layout.seeds * self.layout.games, self.layout.agents)
        self.returns = torch.zeros(shape, device=self.device)
        self.influence = torch.zeros(shape, device=self.device, dtype=torch.float64)
        self.events = {key: torch.zeros(shape, device=self.device) for key in EPISODE_EVENTS}
        self.open_step = torch.full((shape[0],), -1, device=self.device)
        self.exerted: list[Tensor] = []
        self.losses: list[dict[str, Tensor]] = []
        self.t = 0

    def record_step(self, extrinsic: Tensor, info: dict, influence: InfluenceStep | None) -> None:
        self.returns += extrinsic
        for key in EPISODE_EVENTS:
            self.events[key] += info[key]
        if influence is not None:
            self.influence += influence.reward
            self.exerted.append(influence.nonnegative.sum(2))  # [B, K]: agents 0..K-1 influence
        if "open" in info:
            opened = info["open"][:, 0].bool() & (self.open_step < 0)
            self.open_step = torch.where(opened, self.t, self.open_step)
        self.t += 1

    def record_update(self, terms: dict[str, Tensor]) -> None:
        """The loss terms of one update, per model [M]."""
        self.losses.append(terms)

    def finish(self, episode: int, seeds: list[int], env_steps: int, wall_time: float,
               listening: Tensor | None, listening_init: Tensor | None) -> list[dict]:
        """One row per seed for the episode that just ended, then empty accumulators.
        `listening`, `listening_init`: per seed, [S]."""
        s, e = self.layout.seeds, self.layout.games

        def per_game(x: Tensor) -> np.ndarray:
            return x.reshape(s, e, *x.shape[1:]).cpu().numpy().astype(np.float64)

        returns = per_game(self.returns)  # [S, E, N]
        collective = metrics.collective_reward(returns)
        equality = metrics.equality(returns)
        events = {key: per_game(value) for key, value in self.events.items()}
        influence = per_game(self.influence)
        opened = per_game(self.open_step)
        sparsity = self._sparsity()
        losses = {name: self.layout.per_seed(torch.stack([u[name] for u in self.losses]).mean(0)).cpu().numpy()
                  for name in (self.losses[0] if self.losses else {})}
        rows = []
        for i, seed in enumerate(seeds):
            row = {
                "seed": seed,
                "episode": episode,
                "env_steps": env_steps,
                "wall_time": wall_time,
                "collective_reward": collective[i].mean(),
                "equality": equality[i].mean(),
                "collective_times_equality": (collective[i] * equality[i]).mean(),
            }
            for k in range(self.layout.agents):
                row[f"return_{k}"] = returns[i, :, k].mean()
                row[f"influence_{k}"] = influence[i, :, k].mean()
                for key in EPISODE_EVENTS:
                    row[f"{key}_{k}"] = events[key][i, :, k].mean()
            if self.box_trapped:
                row["open_rate"] = (opened[i] >= 0).mean()
                row["open_step_mean"] = opened[i][opened[i] >= 0].mean() if (opened[i] >= 0).any() else np.nan
            if sparsity is not None:
                mean, above = sparsity
                for k in range(mean.shape[-1]):
                    row[f"influence_mean_{k}"] = mean[i, :, k].mean()
                    row[f"influence_above_mean_{k}"] = above[i, :, k].mean()
            for name, values in losses.items():
                row[f"loss_{name}" if name in LOSS_TERMS else name] = values[i]
            if listening is not None:
                row["listening"], row["listening_init"] = listening[i].item(), listening_init[i].item()
            rows.append({key: value if isinstance(value, (int, str)) else float(value) for key, value in row.items()})
        self.start()
        return rows

    def _sparsity(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Per game and influencing agent [S, E, K]: the episode's mean exerted influence per
        step, and the fraction of steps where it is above that mean."""
        if not self.exerted:
            return None
        exerted = torch.stack(self.exerted)  # [T, B, K] float64
        mean = exerted.mean(0)
        above = (exerted > mean).double().mean(0)
        s, e = self.layout.seeds, self.layout.games
        return (mean.reshape(s, e, -1).cpu().numpy(), above.reshape(s, e, -1).cpu().numpy())

    def state_dict(self) -> dict:
        return {"returns": self.returns, "influence": self.influence, "events": self.events,
                "open_step": self.open_step, "exerted": self.exerted, "losses": self.losses, "t": self.t}

    def load_state_dict(self, state: dict) -> None:
        self.returns, self.influence, self.events = state["returns"], state["influence"], dict(state["events"])
        self.open_step, self.exerted, self.losses = state["open_step"], list(state["exerted"]), list(state["losses"])
        self.t = int(state["t"])
