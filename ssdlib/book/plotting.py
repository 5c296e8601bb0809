"""The book's figure style and small plotting helpers, shared by every notebook.

    from ssdlib.book.plotting import use_book_style, show_map, save_figure
    use_book_style()
    fig, ax = plt.subplots()
    show_map(ax, env.render(0), "Cleanup at reset")
    save_figure(fig, figure_path("results", "environments", "cleanup"))

One style for all figures (`use_book_style`), maps drawn cell by cell without smoothing
(`show_map`, `show_frames`), one colour per training condition (`condition_colour`,
`condition_handles`), legends outside the axes (`legend_below`), and
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
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
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
    "comm_influence": "#fbafe4",  # the communication family's pink
    "comm_baseline": "#949494",  # mid grey: apart from the MOA baseline's dark grey in Table 4
    "moa": "#56b4e9",
    "moa_baseline": "#404040",  # dark grey: the MOA architecture without the influence reward
    "moa_influence": "#56b4e9",  # sky blue, the MOA family's colour
    "random": "#949494",
}

# Font sizes for the book's text column, 676 px wide at a 1280 px window: most figures are 10 to
# 11 in wide at 100 dpi and shown at about 0.6 of their size there, so 13 pt is about 11 px on
# the page (a 6.4 in figure is shown at full size, 13 pt at 18 px).
BOOK_RC: dict[str, Any] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
    "font.family": "DejaVu Sans",  # ships with matplotlib: identical text on every machine
    "font.size": 14,
    "axes.titlesize": 15,
    "axes.labelsize": 14,
    "xtick.labelsize": 13,
    "ytick.labelsize": 13,
    "legend.fontsize": 13,
    "legend.title_fontsize": 13,
    "figure.titlesize": 15,
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

    colours = list(dict.fromkeys(CONDITION_COLOURS.values()))  # a family's colour once in the cycle
    sns.set_theme(context="notebook", style="whitegrid", palette=colours, rc=BOOK_RC)


def condition_colour(condition: str) -> str:
    """The colour of a condition, from its config name ("cleanup_influence") or family ("influence")."""
    if condition in CONDITION_COLOURS:
        return CONDITION_COLOURS[condition]
    for family in sorted(CONDITION_COLOURS, key=len, reverse=True):  # "inequity_aversion" before "a3c"
        if condition.endswith("_" + family):
            return CONDITION_COLOURS[family]
    raise ValueError(f"no colour for condition {condition!r}; known families: {sorted(CONDITION_COLOURS)}")


def condition_handles(conditions: Sequence[str], labels: dict[str, str] | None = None,
                      kind: str = "line") -> list[Line2D | Patch]:
    """Legend handles, one per condition (config name or family; repeats dropped), each in the
    condition's colour (`condition_colour`) and labelled `labels[condition]` (default: the
    condition). kind: "line" (for curves) or "patch" (for bars)."""
    if kind not in ("line", "patch"):
        raise ValueError(f"kind must be 'line' or 'patch', got {kind!r}")
    handles: list[Line2D | Patch] = []
    for condition in dict.fromkeys(conditions):
        colour, label = condition_colour(condition), (labels or {}).get(condition, condition)
        if kind == "line":
            handles.append(Line2D([], [], color=colour, linewidth=2.0, label=label))
        else:
            handles.append(Patch(facecolor=colour, edgecolor="none", label=label))
    return handles


def legend_below(fig: Figure, handles: Sequence[Any] | None = None, ncols: int | None = None, **kwargs: Any) -> Legend:
    """A figure legend centred below all the axes, outside them, so that it covers no data.

    `handles` default to the labelled artists of every axes; an entry several panels share
    (same label) is shown once. With constrained layout the axes make room for it; otherwise
    it hangs below the figure, which `savefig.bbox: tight` (and the inline backend) includes.
    """
    if handles is None:
        found: dict[str, Any] = {}
        for ax in fig.axes:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                found.setdefault(label, handle)
        handles, labels = list(found.values()), list(found)
    else:
        handles = list(handles)
        labels = [h.get_label() for h in handles]
    if not handles:
        raise ValueError("legend_below found no labelled artists to show")
    ncols = ncols or min(len(handles), 3)
    for ax in fig.axes:  # the panels' own legends would repeat it
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    engine = fig.get_layout_engine()
    if engine is not None and type(engine).__name__ == "ConstrainedLayoutEngine":
        return fig.legend(handles, labels, loc="outside lower center", ncols=ncols, **kwargs)
    return fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=ncols, **kwargs)


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


def wrap_to_width(text: str, width_in: float, fontsize: float) -> str:
    """`text` broken into lines (at spaces) that fit `width_in` inches at `fontsize` points
    (DejaVu Sans: about 0.55 em per character on average)."""
    import textwrap

    chars = max(int(width_in * 72 / (0.55 * fontsize)), 8)
    return "\n".join(textwrap.fill(line, chars, break_long_words=False, break_on_hyphens=False) for line in text.split("\n"))


def _points(size: Any) -> float:
    from matplotlib.font_manager import FontProperties

    return FontProperties(size=size).get_size_in_points()


def show_frames(
    frames: Sequence[tuple[str, Any]], ncols: int | None = None, panel_size: float = 2.6,
    suptitle: str | None = None,
) -> Figure:
    """A figure of maps side by side: `frames` is a sequence of (title, rgb). A title too long
    for its panel (or a suptitle too long for the figure) is wrapped onto several lines, so that
    neighbouring titles never run into each other."""
    if not frames:
        raise ValueError("show_frames needs at least one (title, rgb) frame")
    images = [(title, _as_rgb(rgb)) for title, rgb in frames]
    ncols = len(images) if ncols is None else ncols
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    nrows = -(-len(images) // ncols)
    aspect = max(img.shape[0] / img.shape[1] for _, img in images)
    title_size, suptitle_size = _points(plt.rcParams["axes.titlesize"]), _points(plt.rcParams["figure.titlesize"])
    titles = [wrap_to_width(title, panel_size * 0.95, title_size) if title else title for title, _ in images]
    lines = max((t.count("\n") + 1 for t in titles if t), default=0)
    width = panel_size * ncols
    extra = nrows * lines * title_size * 1.3 / 72  # inches of title lines
    if suptitle:
        suptitle = wrap_to_width(suptitle, width * 0.95, suptitle_size)
        extra += (suptitle.count("\n") + 1) * suptitle_size * 1.3 / 72
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, panel_size * aspect * nrows + 0.3 + extra), squeeze=False)
    for ax, title, (_, img) in zip(axes.flat, titles, images):
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

    The format follows the suffix (".png" unless another is given); returns the path. PNGs
    carry no "Software" (matplotlib version) text, so a figure's bytes depend only on what it
    draws: a rebuild that changes nothing leaves the file, and git, untouched.
    """
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format=path.suffix[1:], metadata={"Software": None} if path.suffix == ".png" else None)
        os.chmod(tmp, 0o644)  # mkstemp's files are private; figures and tables are for readers
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
