"""The book's figure style and small plotting helpers, shared by every notebook.

    from ssdlib.book.plotting import use_book_style, show_map, save_figure
    use_book_style()
    fig, ax = plt.subplots()
    show_map(ax, env.render(0), "Cleanup at reset")
    save_figure(fig, figure_path("results", "environments", "cleanup"))

One style for all figures (`use_book_style`), maps drawn cell by cell without smoothing
(`show_map`, `show_frames`), one colour per training condition (`condition_colour`), and
figures and tables written atomically (`save_figure`, `save_table`), so an interrupted
notebook never leaves a half-written file behind. Nothing here selects a matplotlib backend: notebooks keep their
inline figures.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Patch

from ..envs import palette
from ..runs import atomic_write

# Colour-blind-safe colours (seaborn's "colorblind" palette) for the conditions of the paper,
# so one condition has one colour in every figure of the book.
CONDITION_COLOURS = {
    "a3c": "#0173b2",
    "visible": "#de8f05",
    "influence": "#029e73",
    "prosocial": "#cc78bc",
    "inequity_aversion": "#d55e00",
    "ppo": "#ca9161",
    "comm": "#fbafe4",
    "moa": "#56b4e9",
    "moa_baseline": "#404040",  # dark grey: the MOA architecture without the influence reward
    "moa_influence": "#56b4e9",  # sky blue, the MOA family's colour
    "random": "#949494",
}

BOOK_RC: dict[str, Any] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
    "font.family": "DejaVu Sans",  # ships with matplotlib: identical text on every machine
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.interpolation": "nearest",
}

# What each game's map shows, for `map_legend_handles`.
MAP_LEGEND = {
    "cleanup": ("wall", "apple", "waste", "river", "penalty beam", "cleaning beam"),
    "harvest": ("wall", "apple", "penalty beam"),
    "box_trapped": ("wall", "apple"),
}
_LEGEND_INDEX = {
    "floor": palette.FLOOR,
    "wall": palette.WALL,
    "apple": palette.APPLE,
    "penalty beam": palette.PENALTY_BEAM,
    "cleaning beam": palette.CLEAN_BEAM,
    "waste": palette.WASTE,
    "river": palette.RIVER,
}


def use_book_style() -> None:
    """Apply the book's figure style (seaborn's whitegrid theme plus BOOK_RC) globally."""
    import seaborn as sns  # imported here: the environments and trainers do not need it

    sns.set_theme(context="notebook", style="whitegrid", palette=list(CONDITION_COLOURS.values()), rc=BOOK_RC)


def condition_colour(condition: str) -> str:
    """The colour of a condition, from its config name ("cleanup_influence") or family ("influence")."""
    if condition in CONDITION_COLOURS:
        return CONDITION_COLOURS[condition]
    for family in sorted(CONDITION_COLOURS, key=len, reverse=True):  # "inequity_aversion" before "a3c"
        if condition.endswith("_" + family):
            return CONDITION_COLOURS[family]
    raise ValueError(f"no colour for condition {condition!r}; known families: {sorted(CONDITION_COLOURS)}")


def _as_rgb(rgb: Any) -> np.ndarray:
    if hasattr(rgb, "detach"):
        rgb = rgb.detach().cpu().numpy()
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"a map must be an RGB image of shape [H, W, 3], got shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"a map must have dtype uint8 (0..255), got {array.dtype}")
    return array


def show_map(ax: Axes, rgb: Any, title: str | None = None, *, cell_grid: bool = False) -> AxesImage:
    """Draw an RGB map [H, W, 3] (numpy or torch, uint8) on `ax`, one crisp square per cell.

    No ticks or grid; `cell_grid` draws faint lines between cells (for small maps).
    """
    image = _as_rgb(rgb)
    shown = ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if cell_grid:
        h, w = image.shape[:2]
        ax.set_xticks(np.arange(-0.5, w, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, h, 1), minor=True)
        ax.grid(which="minor", color="#404040", linewidth=0.4)
        ax.tick_params(which="minor", length=0)
    if title:
        ax.set_title(title)
    return shown


def show_frames(
    frames: Sequence[tuple[str, Any]], ncols: int | None = None, panel_size: float = 2.6,
    suptitle: str | None = None,
) -> Figure:
    """A figure of maps side by side: `frames` is a sequence of (title, rgb)."""
    if not frames:
        raise ValueError("show_frames needs at least one (title, rgb) frame")
    images = [(title, _as_rgb(rgb)) for title, rgb in frames]
    ncols = len(images) if ncols is None else ncols
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    nrows = -(-len(images) // ncols)
    aspect = max(img.shape[0] / img.shape[1] for _, img in images)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(panel_size * ncols, panel_size * aspect * nrows + 0.5), squeeze=False
    )
    for ax, (title, img) in zip(axes.flat, images):
        show_map(ax, img, title)
    for ax in list(axes.flat)[len(images):]:
        ax.set_visible(False)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def map_legend_handles(game: str, num_agents: int = 0) -> list[Patch]:
    """Legend patches for what a game's map shows, then `num_agents` agent colours."""
    if game not in MAP_LEGEND:
        raise ValueError(f"unknown game {game!r}; choose from {sorted(MAP_LEGEND)}")
    colours = palette.PALETTE.numpy() / 255.0
    handles = [Patch(facecolor=colours[_LEGEND_INDEX[name]], edgecolor="#404040", label=name) for name in MAP_LEGEND[game]]
    handles += [
        Patch(facecolor=colours[palette.AGENT + i], edgecolor="#404040", label=f"agent {i}") for i in range(num_agents)
    ]
    return handles


def figure_path(results_dir: str | Path, notebook: str, name: str) -> Path:
    """Where a notebook's figure goes: RESULTS/figures/NOTEBOOK/NAME.png."""
    return Path(results_dir) / "figures" / notebook / f"{name}.png"


def table_path(results_dir: str | Path, notebook: str, name: str) -> Path:
    """Where a notebook's table goes: RESULTS/tables/NOTEBOOK/NAME.csv."""
    return Path(results_dir) / "tables" / notebook / f"{name}.csv"


def save_table(table: Any, path: str | Path) -> Path:
    """Write a DataFrame to CSV atomically; returns the path."""
    path = Path(path)
    atomic_write(path, lambda tmp: table.to_csv(tmp))
    os.chmod(path, 0o644)  # mkstemp's files are private; figures and tables are for readers
    return path


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write `fig` to `path` atomically (a temporary file in the same folder, then renamed).

    The format follows the suffix (".png" unless another is given); returns the path.
    """
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format=path.suffix[1:])
        os.chmod(tmp, 0o644)  # mkstemp's files are private; figures and tables are for readers
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
