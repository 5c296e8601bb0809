"""Two layouts of the same numbers: the env's, per game, and the models', per network copy.

A trainer runs S seeds of N agents on E games per seed. The env holds B = S * E games and
lays per-agent tensors out [B, N, ...]; the networks hold M = S * N independent copies and
lay them out [M, E, ...] (copy m = seed * N + agent).
"""

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Layout:
    seeds: int  # S
    agents: int  # N
    games: int  # E, per seed

    @property
    def models(self) -> int:
        return self.seeds * self.agents

    def to_models(self, x: Tensor) -> Tensor:
        """[B, N, ...] (env layout) -> [M, E, ...] (model layout)."""
        s, n, e, rest = self.seeds, self.agents, self.games, x.shape[2:]
        return x.reshape(s, e, n, *rest).transpose(1, 2).reshape(s * n, e, *rest)

    def to_games(self, y: Tensor) -> Tensor:
        """[M, E, ...] (model layout) -> [B, N, ...] (env layout)."""
        s, n, e, rest = self.seeds, self.agents, self.games, y.shape[2:]
        return y.reshape(s, n, e, *rest).transpose(1, 2).reshape(s * e, n, *rest)

    def per_seed(self, x: Tensor) -> Tensor:
        """A per-model [M, ...] tensor -> its mean over each seed's agents, [S, ...]."""
        return x.reshape(self.seeds, self.agents, *x.shape[1:]).mean(1)

    def agent_rows(self, agents: slice, device: torch.device) -> Tensor | slice:
        """The model rows (seed-major) of the agents `agents` (a slice of 0..N-1) of every
        seed: a slice with one seed, so that indexing takes a view rather than a copy,
        otherwise an index on `device`."""
        if self.seeds == 1:
            return agents
        rows = torch.arange(self.models).view(self.seeds, self.agents)[:, agents]
        return rows.flatten().to(device)
