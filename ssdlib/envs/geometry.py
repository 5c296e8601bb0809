"""Actions, facings and the egocentric geometry of moves, beams and views (spec 2, 5, 8).

Facings are numbered clockwise, UP=0, RIGHT=1, DOWN=2, LEFT=3, so a clockwise turn adds one
modulo four. Every table here is indexed by facing first; the env gathers rows by each
agent's facing, so no Python code branches on a facing during a step.
"""

import torch

ACTION_NAMES = (
    "MOVE_LEFT", "MOVE_RIGHT", "MOVE_UP", "MOVE_DOWN", "STAY",
    "TURN_CLOCKWISE", "TURN_COUNTERCLOCKWISE", "FIRE", "CLEAN",
)
MOVE_LEFT, MOVE_RIGHT, MOVE_UP, MOVE_DOWN, STAY, TURN_CW, TURN_CCW, FIRE, CLEAN = range(9)
OPEN = 7  # Box Trapped's special action takes FIRE's index (that game has no beams)

UP, RIGHT, DOWN, LEFT = range(4)
FACING_NAMES = ("UP", "RIGHT", "DOWN", "LEFT")

# forward unit vector d and right-hand vector s per facing, as (row, col)
FORWARD = torch.tensor([[-1, 0], [0, 1], [1, 0], [0, -1]])
RIGHT_HAND = torch.tensor([[0, 1], [1, 0], [0, -1], [-1, 0]])

VIEW_RADIUS = 7
VIEW_SIZE = 2 * VIEW_RADIUS + 1
BEAM_LENGTH = 5


def move_table(num_actions: int) -> torch.Tensor:
    """Displacement [4 facings, num_actions, 2] of every action (zero for non-moves).

    Strafe left is -s, strafe right +s, forward (MOVE_UP) d, back (MOVE_DOWN) -d.
    """
    table = torch.zeros(4, num_actions, 2, dtype=torch.long)
    table[:, MOVE_LEFT] = -RIGHT_HAND
    table[:, MOVE_RIGHT] = RIGHT_HAND
    table[:, MOVE_UP] = FORWARD
    table[:, MOVE_DOWN] = -FORWARD
    return table


def beam_offsets() -> torch.Tensor:
    """Cells [4 facings, 3 rays, BEAM_LENGTH, 2] of a width-3 beam, relative to the firer.

    Centre ray p+d .. p+5d; side rays p±s .. p±s+4d (level with the firer).
    """
    k = torch.arange(BEAM_LENGTH)[:, None]
    d, s = FORWARD[:, None, None, :], RIGHT_HAND[:, None, None, :]
    centre = (k + 1) * d
    left = -s + k * d
    right = s + k * d
    return torch.cat([centre, left, right], dim=1)


def view_offsets() -> torch.Tensor:
    """Map offsets [4 facings, 15, 15, 2] of each pixel of the egocentric view.

    Pixel (i, j) shows the cell p + (7 - i) d + (j - 7) s: forward is always up and the
    agent sits at pixel (7, 7), for every facing.
    """
    i = torch.arange(VIEW_SIZE)
    ahead = (VIEW_RADIUS - i)[:, None, None]  # [15, 1, 1]
    side = (i - VIEW_RADIUS)[None, :, None]  # [1, 15, 1]
    d, s = FORWARD[:, None, None, :], RIGHT_HAND[:, None, None, :]
    return ahead[None] * d + side[None] * s
