"""Beam rays (spec section 5): which cells of a ray a beam covers."""

import torch


def ray_coverage(wall: torch.Tensor, stopper: torch.Tensor) -> torch.Tensor:
    """Covered cells of rays walked outward from the firer, cell by cell.

    wall, stopper: bool [..., L], one entry per ray cell in walking order. A ray stops
    before the first wall or map edge (that cell is not covered) and at the first stopper,
    an agent or (for CLEAN) a waste cell, which is covered.
    """
    before_wall = torch.cumsum(wall, -1) == 0
    no_stopper_before = (torch.cumsum(stopper, -1) - stopper.long()) == 0
    return before_wall & no_stopper_before
