"""Fields of view on a recorded map, in numpy: what each agent saw (spec 8).

The env computes views on the device during play; recordings keep only full maps, positions
and facings, and these functions recompute from them exactly what each agent saw and which
agents were inside each other's 15x15 window.
"""

import numpy as np

from . import palette
from .geometry import VIEW_RADIUS, VIEW_SIZE, view_offsets


def field_of_view(pos: tuple[int, int] | np.ndarray, height: int, width: int,
                  radius: int = VIEW_RADIUS) -> tuple[int, int, int, int]:
    """The map cells an agent at `pos` (row, col) sees: (top, bottom, left, right), inclusive,
    clipped to a map of `height` x `width`. The egocentric view is the square of side
    2 * radius + 1 centred on the agent, whatever its facing (it is rotated, not shifted)."""
    row, col = (int(x) for x in np.asarray(pos).reshape(-1)[:2])
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"position {(row, col)} is outside the {height}x{width} map")
    top, bottom, left, right = fields_of_view(np.array([row, col]), height, width, radius)
    return int(top), int(bottom), int(left), int(right)


def fields_of_view(pos: np.ndarray, height: int, width: int,
                   radius: int = VIEW_RADIUS) -> tuple[np.ndarray, ...]:
    """`field_of_view` elementwise over positions [..., 2]: arrays (top, bottom, left, right)."""
    pos = np.asarray(pos)
    return (np.clip(pos[..., 0] - radius, 0, height - 1), np.clip(pos[..., 0] + radius, 0, height - 1),
            np.clip(pos[..., 1] - radius, 0, width - 1), np.clip(pos[..., 1] + radius, 0, width - 1))


def in_view(observer: np.ndarray, other: np.ndarray, radius: int = VIEW_RADIUS) -> np.ndarray:
    """Whether `other` (row, col) lies in the view of `observer` (row, col), elementwise over
    leading axes [..., 2]: the env's own test (both offsets at most the view radius)."""
    delta = np.abs(np.asarray(observer, dtype=np.int64) - np.asarray(other, dtype=np.int64))
    return (delta <= radius).all(axis=-1)


def views_from_maps(maps: np.ndarray, pos: np.ndarray, orient: np.ndarray) -> np.ndarray:
    """Egocentric views uint8 [..., N, 15, 15] recomputed from full maps [..., H, W], positions
    [..., N, 2] and facings [..., N], exactly as the env computes them (cells outside the map
    read as floor)."""
    maps, pos, orient = np.asarray(maps), np.asarray(pos, dtype=np.int64), np.asarray(orient, dtype=np.int64)
    h, w = maps.shape[-2:]
    lead = maps.shape[:-2]
    n = pos.shape[-2]
    offsets = view_offsets().numpy()  # [4, 15, 15, 2]
    rows = pos[..., 0, None, None] + offsets[orient][..., 0]  # [..., N, 15, 15]
    cols = pos[..., 1, None, None] + offsets[orient][..., 1]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = maps.reshape(-1, h * w)
    cells = np.where(inside, rows * w + cols, 0).reshape(flat.shape[0], -1)
    views = np.take_along_axis(flat, cells, axis=1).reshape(*lead, n, VIEW_SIZE, VIEW_SIZE)
    return np.where(inside, views, palette.FLOOR).astype(np.uint8)
