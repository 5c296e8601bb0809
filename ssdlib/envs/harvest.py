"""Harvest, a common-pool resource game (spec section 6): apples regrow near apples."""

import torch

from .grid import GridGame, GridState
from .maps import GridMap

REGROWTH_PROBS = (0.0, 0.005, 0.02, 0.05)  # by number of apples nearby, capped at 3
NEIGHBOURHOODS = {"square": 2, "disc": 4}  # max j^2 + k^2 of the offsets counted


def neighbourhood_offsets(name: str) -> torch.Tensor:
    """Offsets [K, 2] (j, k) with j^2 + k^2 <= limit: 9 for "square", 13 for "disc"."""
    if name not in NEIGHBOURHOODS:
        raise ValueError(f"unknown Harvest neighbourhood {name!r}; choose from {sorted(NEIGHBOURHOODS)}")
    limit = NEIGHBOURHOODS[name]
    radius = int(limit**0.5)
    j = torch.arange(-radius, radius + 1)
    jj, kk = torch.meshgrid(j, j, indexing="ij")
    keep = jj**2 + kk**2 <= limit
    return torch.stack([jj[keep], kk[keep]], dim=1)


class Harvest(GridGame):
    """Harvest with FIRE (penalty beam); 8 actions."""

    name = "harvest"
    num_actions = 8
    default_map = "harvest"

    def __init__(
        self, grid_map: GridMap, num_envs: int, num_agents: int, neighbourhood: str = "square", **kwargs
    ) -> None:
        offsets = neighbourhood_offsets(neighbourhood)
        self.neighbourhood = neighbourhood
        super().__init__(grid_map, num_envs, num_agents, **kwargs)
        apple_cells = self._flat_cells(grid_map, "A")
        self._apple_cells = apple_cells.to(self.device)
        # [A, K] flat cells of each apple cell's neighbourhood (OUT, never an apple, off the map)
        self._neighbours = self._cell_table(offsets[None].expand(4, -1, -1))[apple_cells * 4].to(self.device)
        self._probs = torch.tensor(REGROWTH_PROBS, device=self.device)

    def _initial_state(self) -> GridState:
        state = super()._initial_state()
        state.apples = self._grid(self.map.mask("A"))
        return state

    def _spawn(self) -> None:
        """Every empty apple cell regrows with p[min(n, 3)], n = apples in its neighbourhood
        counted before this step's regrowth (a synchronous update)."""
        s = self.state
        b = s.pos.shape[0]
        nearby = s.apples.index_select(1, self._neighbours.view(-1)).view(b, *self._neighbours.shape).sum(-1)
        prob = self._probs[nearby.clamp(max=3).long()]
        free = ~(s.apples | self._occupied()).index_select(1, self._apple_cells)
        grow = free & (self._rand(b, len(self._apple_cells)) < prob)
        self._grow_apples(self._apple_cells, grow)
