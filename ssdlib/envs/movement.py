"""Simultaneous movement with conflict resolution (spec section 4), batched over games.

All agents choose a target cell at once. The rules:
- agents that do not move (turn, beam, stay, bump into a wall) keep and block their cell;
- several movers targeting one cell: one of them, uniformly at random, keeps its move;
- two agents never swap cells;
- a mover follows into a cell being vacated (chains) and closed cycles of three or more
  all move;
- a mover whose target holds an agent that ends up not moving stays too, which covers the
  spec's Decision that a contest winner whose target's occupant fails to leave stays.
"""

import torch


def resolve_moves(
    pos: torch.Tensor, target: torch.Tensor, wants_move: torch.Tensor, priority: torch.Tensor
) -> torch.Tensor:
    """Which agents actually move.

    pos, target: int [B, N] flat cell indices; wants_move: bool [B, N] (target differs from
    pos and is not a wall); priority: float [B, N] i.i.d. uniform draws that break contests
    (the highest wins, so every contender is equally likely to win).
    Returns bool [B, N].
    """
    n = pos.shape[1]
    others = ~torch.eye(n, dtype=torch.bool, device=pos.device)
    both = wants_move[:, :, None] & wants_move[:, None, :] & others
    # contests: lose to any contender for the same cell with a higher priority
    rival = both & (target[:, :, None] == target[:, None, :])
    beaten = (rival & (priority[:, None, :] > priority[:, :, None])).any(-1)
    moving = wants_move & ~beaten
    # into[b, i, j]: i's target is j's current cell
    into = (target[:, :, None] == pos[:, None, :]) & others
    swap = into & into.transpose(1, 2) & both
    moving = moving & ~swap.any(-1)
    # blocking travels back along chains, one link per pass; a chain has at most n-1 links
    for _ in range(n - 1):
        moving = moving & ~(into & ~moving[:, None, :]).any(-1)
    return moving
