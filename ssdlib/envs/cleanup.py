"""Cleanup, a public-goods game (spec section 7): apples grow only while the river is clean."""

import torch

from .grid import GridGame, GridState
from .maps import GridMap

DEPLETION_THRESHOLD = 0.4
RESTORATION_THRESHOLD = 0.0
WASTE_SPAWN_PROB = 0.5
APPLE_RESPAWN_PROB = 0.05


def apple_spawn_probability(density: torch.Tensor) -> torch.Tensor:
    """Per-cell apple probability for waste density [B]: 0 at or above the depletion
    threshold, 0.05 at or below the restoration threshold, linear in between."""
    span = DEPLETION_THRESHOLD - RESTORATION_THRESHOLD
    linear = APPLE_RESPAWN_PROB * (1 - (density - RESTORATION_THRESHOLD) / span)
    prob = torch.where(density <= RESTORATION_THRESHOLD, APPLE_RESPAWN_PROB, linear)
    return torch.where(density >= DEPLETION_THRESHOLD, 0.0, prob)


class Cleanup(GridGame):
    """Cleanup with FIRE (penalty beam) and CLEAN (cleaning beam); 9 actions."""

    name = "cleanup"
    num_actions = 9
    default_map = "cleanup"
    has_clean = True

    def __init__(self, grid_map: GridMap, num_envs: int, num_agents: int, **kwargs) -> None:
        self._apple_cells = self._flat_cells(grid_map, "B")
        self._river_cells = self._flat_cells(grid_map, "HR")  # stream never gets waste
        if len(self._river_cells) == 0:
            raise ValueError(f"Cleanup map {grid_map.name!r} has no river cells 'H' or 'R'")
        self.potential_waste_area = len(self._river_cells)
        super().__init__(grid_map, num_envs, num_agents, **kwargs)
        self._apple_cells = self._apple_cells.to(self.device)
        self._river_cells = self._river_cells.to(self.device)

    def _initial_state(self) -> GridState:
        state = super()._initial_state()
        state.waste = self._grid(self.map.mask("H"))
        return state

    def waste_density(self) -> torch.Tensor:
        """#waste / #(river + waste) cells per game, float32 [B]."""
        return self.num_waste().float() / self.potential_waste_area

    def _spawn(self) -> None:
        """Apples on free apple-spawn cells, and at most one new waste cell per step.

        The spec walks the river cells in a random order and turns the first clean one whose
        p = 0.5 draw succeeds into waste. The first success in a uniformly random order is a
        uniform choice among the successes, so one draw per cell does both: a cell succeeds
        when u < 0.5, and the success with the smallest u (uniform on [0, 0.5)) is chosen.
        """
        s = self.state
        b = s.pos.shape[0]
        density = self.waste_density()
        depleted = density >= DEPLETION_THRESHOLD
        free = ~(s.apples | self._occupied()).index_select(1, self._apple_cells)
        u = self._rand(b, len(self._apple_cells))
        grow = free & (u < apple_spawn_probability(density)[:, None])
        self._grow_apples(self._apple_cells, grow)

        clean = ~s.waste.index_select(1, self._river_cells)
        u = torch.where(clean, self._rand(b, len(self._river_cells)), 2.0)
        first, index = u.min(1)
        new_waste = (first < WASTE_SPAWN_PROB) & ~depleted
        cell = torch.where(new_waste, self._river_cells[index], self.DUMP)
        s.waste.scatter_(1, cell[:, None], True)
