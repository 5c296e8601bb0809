"""Colours of the games (spec section 8) and the compact palette encoding of images.

Observations and maps are stored as palette indices (uint8, one byte per cell instead of
three); `to_rgb` turns them into the exact RGB image of the spec in one call. The index
encoding is lossless: two things that share an RGB colour (agent 5 and the cleaning beam,
river and stream) map to the same RGB pixel, exactly as in the RGB games.
"""

import torch

FLOOR = 0  # also everything outside the map
WALL = 1
APPLE = 2
PENALTY_BEAM = 3
CLEAN_BEAM = 4
WASTE = 5
RIVER = 6  # river and stream share a colour
AGENT = 7  # agent i is drawn with index AGENT + i

AGENT_COLOURS = (
    (0, 0, 255), (2, 81, 154), (204, 0, 204), (216, 30, 54), (254, 151, 0),
    (100, 255, 255), (99, 99, 255), (250, 204, 255), (238, 223, 16),
)
MAX_AGENTS = len(AGENT_COLOURS)

PALETTE = torch.tensor(
    [
        (0, 0, 0),  # floor
        (180, 180, 180),  # wall
        (0, 255, 0),  # apple
        (255, 255, 0),  # penalty beam
        (100, 255, 255),  # cleaning beam
        (99, 156, 194),  # waste
        (113, 75, 24),  # river, stream
        *AGENT_COLOURS,
    ],
    dtype=torch.uint8,
)


def to_rgb(index: torch.Tensor) -> torch.Tensor:
    """Palette indices [...] -> RGB uint8 [..., 3] on the same device."""
    return PALETTE.to(index.device)[index.long()]
