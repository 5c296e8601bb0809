"""Box Trapped (spec section 10): one agent can free another from a box with OPEN.

The proof-of-concept game of the paper's supplement: agent 0 (the opener) either eats
inexhaustible apples or opens the box that traps agent 1. Only OPEN links the two agents.
"""

import torch

from . import palette
from .geometry import ACTION_NAMES, OPEN
from .grid import GridGame, GridState, paint
from .maps import GridMap

REGROW_DELAY = 5


class BoxTrapped(GridGame):
    """Two agents; actions 0..6 move, turn and stay, 7 is OPEN (no beams)."""

    name = "box_trapped"
    num_actions = 8
    default_horizon = 100
    default_map = "box_trapped"
    has_fire = False

    def __init__(self, grid_map: GridMap, num_envs: int, num_agents: int = 2, **kwargs) -> None:
        if num_agents != 2:
            raise ValueError(f"box_trapped has exactly 2 agents (opener, trapped), got num_agents={num_agents}")
        trapped = self._flat_cells(grid_map, "T")
        if len(trapped) != 1 or len(self._flat_cells(grid_map, "P")) != 1:
            raise ValueError(f"map {grid_map.name!r} needs exactly one 'P' (opener) and one 'T' (trapped agent)")
        self._trapped_cell = trapped
        box = torch.zeros(grid_map.height * grid_map.width + 2, dtype=torch.bool)
        box[: grid_map.height * grid_map.width] = torch.from_numpy(grid_map.mask("#").ravel())
        self._box = box
        super().__init__(grid_map, num_envs, num_agents, **kwargs)
        self._box = self._box.to(self.device)

    @property
    def action_names(self) -> tuple[str, ...]:
        """OPEN takes FIRE's index in this game (it has no beams)."""
        return ACTION_NAMES[:OPEN] + ("OPEN",)

    def _check_spawn_points(self) -> None:
        """The opener starts on 'P' and the trapped agent on 'T'."""

    def _initial_state(self) -> GridState:
        state = super()._initial_state()
        b = state.pos.shape[0]
        start = torch.cat([self.spawn_points, self._trapped_cell]).to(self.device)
        state.pos = start.expand(b, -1).clone()
        state.apples = self._grid(self.map.mask("A"))
        state.box_open = torch.zeros(b, dtype=torch.bool, device=self.device)
        state.regrow = torch.zeros_like(state.apples, dtype=torch.int8)
        return state

    def _before_moves(self, actions: torch.Tensor) -> dict:
        """OPEN by the opener removes all box walls at once, before this step's moves."""
        s = self.state
        opens = (actions[:, 0] == OPEN) & ~s.box_open
        s.box_open = s.box_open | opens
        opened = torch.zeros_like(actions)
        opened[:, 0] = opens.long()
        return {"open": opened}

    def _blocked(self, target: torch.Tensor) -> torch.Tensor:
        closed_box = self._box[target] & ~self.state.box_open[:, None]
        return self._wall[target] | closed_box

    def _after_eating(self, eaten: torch.Tensor) -> None:
        # +1: the spawn phase of the eating step already counts down once
        cell = torch.where(eaten, self.state.pos, self.DUMP)
        self.state.regrow.scatter_(1, cell, REGROW_DELAY + 1)

    def _spawn(self) -> None:
        """An apple eaten in step t is back at the end of step t + REGROW_DELAY."""
        s = self.state
        s.apples |= s.regrow == 1
        s.regrow = (s.regrow - 1).clamp_(min=0)

    def _draw_extra(self, image: torch.Tensor) -> torch.Tensor:
        closed = self._box[None, :] & ~self.state.box_open[:, None]
        return paint(image, closed, palette.WALL)
