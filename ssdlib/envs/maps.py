"""ASCII maps of the games, shipped inside the package (spec section 1).

Legend: `@` wall, `P` spawn point, `A` apple cell (Harvest, Box Trapped), `B` apple-spawn
cell, `H` waste, `R` river, `S` stream (Cleanup), `#` box wall and `T` trapped agent's cell
(Box Trapped), space floor.
"""

from dataclasses import dataclass
from importlib import resources

import numpy as np

LEGAL_CHARS = frozenset("@PABHRS#T ")


@dataclass(frozen=True)
class GridMap:
    """An immutable map: rows of equal length over LEGAL_CHARS."""

    name: str
    rows: tuple[str, ...]

    @property
    def height(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        return len(self.rows[0])

    def mask(self, chars: str) -> np.ndarray:
        """Boolean [H, W] mask of the cells holding any of `chars`."""
        grid = np.array([list(r) for r in self.rows])
        return np.isin(grid, list(chars))

    def cells(self, chars: str) -> np.ndarray:
        """Int [K, 2] (row, col) of the cells holding any of `chars`, row-major order."""
        return np.argwhere(self.mask(chars))


def packaged_map_names() -> list[str]:
    """Names of the maps that ship with ssdlib."""
    files = resources.files("ssdlib.envs") / "maps"
    return sorted(p.name[:-4] for p in files.iterdir() if p.name.endswith(".txt"))


def parse_map(text: str, name: str = "custom") -> GridMap:
    """Parse an ASCII map; ragged rows or unknown characters are errors."""
    rows = tuple(line for line in text.splitlines() if line.strip())
    if not rows:
        raise ValueError(f"map {name!r} is empty")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise ValueError(f"map {name!r} has rows of different lengths {sorted(widths)}")
    bad = set("".join(rows)) - LEGAL_CHARS
    if bad:
        raise ValueError(f"map {name!r} has unknown characters {sorted(bad)}")
    return GridMap(name, rows)


def load_map(name_or_text: str) -> GridMap:
    """A packaged map by name (see `packaged_map_names`), or a literal multi-line map."""
    if "\n" in name_or_text:
        return parse_map(name_or_text)
    names = packaged_map_names()
    if name_or_text not in names:
        raise ValueError(f"unknown map {name_or_text!r}; packaged maps: {names}")
    text = (resources.files("ssdlib.envs") / "maps" / f"{name_or_text}.txt").read_text()
    return parse_map(text, name_or_text)
