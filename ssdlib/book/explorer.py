"""The episode explorer: step through recorded episodes of trained runs.

In JupyterLab (or any front end that renders ipywidgets):

    from ssdlib.book.explorer import EpisodeExplorer
    EpisodeExplorer("results")

picks a run under results/runs (recording its episodes first if needed, see
`ssdlib.episodes.recording.ensure_episodes`), a seed's game, and a step (a slider, or Play). For a static
page, `animate` draws the same panels into a matplotlib animation and `animation_html` embeds
it as self-contained HTML (every frame inline, no script loaded from anywhere).

The panels (`EpisodePanels`): the full map with one agent's field of view outlined (by default
the influencee most influenced at that step, and its influencer), every agent's 15x15
egocentric view titled with its action, reward and return, and below, the influence of each
influencer-influencee pair over the episode (the agents' returns for conditions without
influence) with a line at the current step. With communication each view's title and a label
beside each agent on the map give the symbol it says at the step; with influential
communication the plot shows the influence of each agent's symbol on the others' next actions,
and the outline follows the listener most influenced by a symbol of the step.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from matplotlib import patheffects, rc_context
from matplotlib.animation import FuncAnimation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..envs import palette
from ..envs.geometry import FACING_NAMES, VIEW_RADIUS, VIEW_SIZE
from ..envs.views import field_of_view
from ..episodes.format import EPISODES_FILE, Episodes
from ..episodes.recording import ensure_episodes
from .drawing import INFLUENCEE_COLOUR, INFLUENCER_COLOUR
from .plotting import show_map
from .results import RUNS

AUTO = "auto"  # outline the most influenced influencee of each step (and its influencer)
PAIR_STYLES = ("-", "--", ":", "-.")
# Font sizes (points) of the panels. At the default 7 in x 96 dpi a figure is 672 px wide, the
# width of the book's text column at 1280 px, so 9 pt is 12 px on the page.
FONTS = {"title": 11, "subtitle": 10, "view": 9, "label": 10, "tick": 9, "legend": 9}
PANEL_WIDTH, PANEL_DPI = 7.0, 96


def action_label(name: str) -> str:
    """A short lower-case action name for a view's title ("TURN_COUNTERCLOCKWISE" -> "turn ccw")."""
    return name.lower().replace("_", " ").replace("counterclockwise", "ccw").replace("clockwise", "cw")


def agent_colour(agent: int) -> tuple[float, float, float]:
    """The colour agent `agent` has on the map, as matplotlib RGB."""
    return tuple(float(x) / 255 for x in palette.AGENT_COLOURS[agent])


# ---------------------------------------------------------------------------- the panels
class EpisodePanels:
    """One figure showing one step of one seed's recorded game; `draw(step)` moves it to
    another step, updating the artists in place (the figure is built once).

    outline: AUTO (the influencee most influenced at the step, its field of view, and its
    influencer; with influential communication, the listener whose next action the symbols of
    the step influence most, and the speaker; no outline without influence), an agent id (that
    agent's field of view), or None. The figure is a bare matplotlib Figure (not pyplot's), so
    it is not shown inline by itself; `png()` renders it.
    """

    def __init__(self, episodes: Episodes, seed: int, step: int = 0, outline: int | str | None = AUTO,
                 width: float = PANEL_WIDTH, dpi: float = PANEL_DPI) -> None:
        self.episodes = episodes
        self.seed = seed
        self.index = episodes.seed_index(seed)
        if outline is not None and outline != AUTO:
            outline = episodes.check_agent(outline, "outline agent")
        self.outline = outline
        ep = episodes
        self.returns = ep.returns()[self.index]  # [T, N]

        self.fig = Figure(dpi=dpi)
        FigureCanvasAgg(self.fig)
        self.ax_map, self.ax_views, self.ax_plot = self._layout(width)
        self.title = self.fig.text(0.015, 1.0, "", fontsize=FONTS["title"], ha="left", va="top")
        self.subtitle = self.fig.text(0.015, 1.0, "", fontsize=FONTS["subtitle"], ha="left", va="top", color="0.25")
        height = self.fig.get_figheight()
        self.title.set_y(1 - 0.08 / height)
        self.subtitle.set_y(1 - 0.34 / height)

        rgb = self._rgb(ep.maps[self.index, 0])
        self.map_image = show_map(self.ax_map, rgb)
        self.view_images = []
        for agent, ax in enumerate(self.ax_views):
            self.view_images.append(show_map(ax, self._rgb(ep.views[self.index, 0, agent])))
            ax.add_patch(self._cell(VIEW_RADIUS, VIEW_RADIUS, agent_colour(agent), 1.0))
            ax.set_xlim(-0.6, VIEW_SIZE - 0.4)
            ax.set_ylim(VIEW_SIZE - 0.4, -0.6)
        self.ax_map.set_xlim(-0.6, ep.width - 0.4)
        self.ax_map.set_ylim(ep.height - 0.4, -0.6)
        from matplotlib.patches import Rectangle

        self.fov = Rectangle((0, 0), 1, 1, fill=False, edgecolor=INFLUENCEE_COLOUR, linewidth=1.8, visible=False)
        self.mark_influencee = self._cell(0, 0, INFLUENCEE_COLOUR, 1.8)
        self.mark_influencer = self._cell(0, 0, INFLUENCER_COLOUR, 1.8)
        for patch in (self.fov, self.mark_influencee, self.mark_influencer):
            patch.set_visible(False)
            self.ax_map.add_patch(patch)
        # with communication: the symbol each agent says, beside it on the map
        outline_text = [patheffects.withStroke(linewidth=2.0, foreground="black")]
        self.symbol_labels = [
            self.ax_map.text(0, 0, "", fontsize=FONTS["view"] - 1, color="white", ha="left", va="bottom",
                             fontweight="bold", path_effects=outline_text, clip_on=True)
            for _ in range(ep.num_agents if ep.communicates else 0)
        ]
        self._plot_series()
        self.step = -1
        self.draw(step)

    def _layout(self, width: float):
        """Place the axes, in inches from the top left, and size the figure (`width` inches
        wide): two title lines; the map, with the agents' views in two rows beside it (a tall
        map: Cleanup, Box Trapped) or in one row below it (a wide map: Harvest); the
        influence (or returns) plot across the bottom, its legend to its right."""
        ep, n = self.episodes, self.episodes.num_agents
        head, side, gap, view_title = 0.6, 0.1, 0.12, 0.58  # inches
        if ep.width <= 1.2 * ep.height:  # a tall map: the views in two rows beside it
            cols, sep = -(-n // 2), 0.25
            # map height = 2 view cells + a view title + gap; solve the row's width for the cell
            per_cell = 2 * ep.width / ep.height + cols
            fixed = 2 * side + sep + (cols - 1) * gap + (view_title + gap) * ep.width / ep.height
            cell = min((width - fixed) / per_cell, 1.7)
            map_h = 2 * cell + view_title + gap
            map_w = map_h * ep.width / ep.height
            block_w = map_w + sep + cols * cell + (cols - 1) * gap
            x0 = (width - block_w) / 2
            top_h = map_h + view_title
            boxes = [(x0, head + view_title, map_w, map_h)]
            for i in range(n):
                r, c = divmod(i, cols)
                boxes.append((x0 + map_w + sep + c * (cell + gap), head + view_title + r * (cell + view_title + gap),
                              cell, cell))
        else:  # a wide map: the views in one row below it
            map_w = width - 2 * side
            map_h = map_w * ep.height / ep.width
            cell = min((map_w - (n - 1) * gap) / n, 1.7)
            row_w = n * cell + (n - 1) * gap
            top_h = map_h + 0.1 + view_title + cell
            boxes = [(side, head, map_w, map_h)]
            boxes += [((width - row_w) / 2 + i * (cell + gap), head + map_h + 0.1 + view_title, cell, cell)
                      for i in range(n)]
        plot_top, plot_h, bottom, left, legend_w = head + top_h + 0.5, 1.5, 0.5, 0.9, 1.0
        height = plot_top + plot_h + bottom
        boxes.append((left, plot_top, width - left - legend_w - side, plot_h))
        self.fig.set_size_inches(width, height)
        axes = [self.fig.add_axes((x / width, 1 - (y + h) / height, w / width, h / height)) for x, y, w, h in boxes]
        return axes[0], axes[1:-1], axes[-1]

    @staticmethod
    def _rgb(index: np.ndarray) -> np.ndarray:
        return palette.to_rgb(torch.from_numpy(np.ascontiguousarray(index))).numpy()

    @staticmethod
    def _cell(row: int, col: int, colour, linewidth: float):
        from matplotlib.patches import Rectangle

        return Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor=colour, linewidth=linewidth)

    def _plot_series(self) -> None:
        ep, ax, s = self.episodes, self.ax_plot, self.index
        steps = np.arange(ep.num_steps)
        if ep.has_influence:
            k_count = ep.influencers
            for k in range(k_count):
                for j in range(ep.num_agents - k_count):
                    ax.plot(steps, ep.influence[s, :, k, j], color=agent_colour(k_count + j),
                            linestyle=PAIR_STYLES[k % len(PAIR_STYLES)], linewidth=1.0, label=f"{k} → {k_count + j}")
            ax.set_ylabel("influence", fontsize=FONTS["label"])
            title = "influence of each influencer on each influencee"
            legend_title = "from → to"
        elif ep.has_message_influence:
            given = ep.message_influence_given()[s]  # [T, N]
            for agent in range(ep.num_agents):
                ax.plot(steps, given[:, agent], color=agent_colour(agent), linewidth=1.0, label=f"agent {agent}")
            ax.set_ylabel("influence", fontsize=FONTS["label"])
            title = "influence of each agent's symbol on the others' next actions"
            legend_title = "speaker"
        else:
            for agent in range(ep.num_agents):
                ax.plot(steps, self.returns[:, agent], color=agent_colour(agent), linewidth=1.2, label=f"agent {agent}")
            ax.set_ylabel("return", fontsize=FONTS["label"])
            title = "extrinsic return so far (no influence in this condition)"
            legend_title = None
        ax.set_title(title, fontsize=FONTS["label"])
        ax.set_xlabel("step", fontsize=FONTS["label"])
        ax.tick_params(labelsize=FONTS["tick"])
        ax.set_xlim(0, max(ep.num_steps - 1, 1))
        # outside the axes, to the right: never over the curves
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, fontsize=FONTS["legend"],
                  title=legend_title, title_fontsize=FONTS["legend"], ncol=1 + (len(ax.lines) > 8),
                  handlelength=1.8, frameon=False)
        self.cursor = ax.axvline(0, color="0.25", linewidth=1.0)

    def outlined(self, step: int) -> tuple[int | None, int | None]:
        """(influencer, agent whose field of view is outlined) at `step`, each None if none."""
        ep = self.episodes
        if self.outline is None:
            return None, None
        if self.outline != AUTO:
            return None, int(self.outline)
        if ep.has_influence:
            k, j = np.unravel_index(np.argmax(ep.influence[self.index, step]), ep.influence.shape[2:])
            return int(k), int(ep.influencers + j)
        if ep.has_message_influence:  # the speaker and the listener of the step's most influential symbol
            k, jj = np.unravel_index(np.argmax(ep.message_influence[self.index, step]), ep.message_influence.shape[2:])
            return int(k), ep.listeners(int(k))[int(jj)]
        return None, None

    def draw(self, step: int) -> None:
        """Show step `step` (updates the artists; `png()` renders)."""
        ep, s = self.episodes, self.index
        t = ep.check_step(step)
        names = ep.action_names
        self.map_image.set_data(self._rgb(ep.maps[s, t]))
        for agent, image in enumerate(self.view_images):
            image.set_data(self._rgb(ep.views[s, t, agent]))
            reward = ep.rewards[s, t, agent]
            who = f"agent {agent} says {ep.messages[s, t, agent]}" if ep.communicates else f"agent {agent}"
            self.ax_views[agent].set_title(
                f"{who}\n{action_label(names[ep.actions[s, t, agent]])}\n"
                f"r {reward:+g}, return {self.returns[t, agent]:g}",
                fontsize=FONTS["view"], color="black", pad=3, linespacing=1.15)
        for agent, label in enumerate(self.symbol_labels):
            row, col = ep.pos[s, t, agent]
            label.set_position((col + 0.45, row - 0.45))
            label.set_text(str(ep.messages[s, t, agent]))
        influencer, watched = self.outlined(t)
        title = f"{ep.config} [{ep.preset}], training seed {self.seed}: step {t} of {ep.num_steps}"
        subtitle = "each view: the agent's 15 × 15 window, turned so that it faces up; r: its reward at the step"
        for patch in (self.fov, self.mark_influencee, self.mark_influencer):
            patch.set_visible(False)
        if watched is not None:
            top, bottom, left, right = field_of_view(ep.pos[s, t, watched], ep.height, ep.width)
            self.fov.set_bounds(left - 0.5, top - 0.5, right - left + 1, bottom - top + 1)
            self.fov.set_visible(True)
            row, col = ep.pos[s, t, watched]
            self.mark_influencee.set_xy((col - 0.5, row - 0.5))
            self.mark_influencee.set_visible(True)
            subtitle = f"outlined in yellow: agent {watched}'s field of view"
        if influencer is not None:
            row, col = ep.pos[s, t, influencer]
            self.mark_influencer.set_xy((col - 0.5, row - 0.5))
            self.mark_influencer.set_visible(True)
            if ep.has_influence:
                value = ep.influence[s, t, influencer, watched - ep.influencers]
                subtitle = (f"agent {watched} (yellow, its field of view outlined) is the most influenced, "
                            f"by agent {influencer} (white): {value:.3g}")
            else:
                value = ep.message_influence[s, t, influencer, ep.listeners(influencer).index(watched)]
                subtitle = (f"agent {influencer}'s symbol (white) influences agent {watched}'s next action most "
                            f"(yellow, view outlined): {value:.3g}")
        self.title.set_text(title)
        self.subtitle.set_text(subtitle)
        self.cursor.set_xdata([t, t])
        self.step = t

    def png(self, dpi: float | None = None) -> bytes:
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png", dpi=dpi or self.fig.dpi)
        return buffer.getvalue()


def step_table(episodes: Episodes, seed: int, step: int) -> str:
    """An HTML table of every agent at one step: role, position, facing, action, reward,
    return so far, and the influence it exerts (influencers) or receives (influencees). With
    communication, the symbol it says; with influential communication, the influence of that
    symbol on each listener's next action (speaker → listener), its total, and the total
    influence on its own next action of the symbols the others say."""
    ep = episodes
    s, t = ep.seed_index(seed), ep.check_step(step)
    returns = ep.returns()[s, t]
    header = ["agent", "role", "row, col", "facing", "action", "reward", "return"]
    if ep.has_influence:
        header.append("influence (given / received)")
    if ep.communicates:
        header.append("says")
    if ep.has_message_influence:
        header += ["its symbol's influence on each listener's next action", "total",
                   "the others' symbols' influence on its next action"]
        received = ep.message_influence_received()[s, t]
    rows = []
    for agent in range(ep.num_agents):
        r, g, b = palette.AGENT_COLOURS[agent]
        swatch = f'<span style="display:inline-block;width:0.9em;height:0.9em;background:rgb({r},{g},{b})"></span>'
        role = "" if not ep.has_influence else ("influencer" if agent < ep.influencers else "influencee")
        row, col = ep.pos[s, t, agent]
        cells = [f"{swatch} {agent}", role, f"{row}, {col}", FACING_NAMES[ep.orient[s, t, agent]],
                 ep.action_names[ep.actions[s, t, agent]], f"{ep.rewards[s, t, agent]:+g}", f"{returns[agent]:g}"]
        if ep.has_influence:
            if agent < ep.influencers:
                cells.append(f"{ep.influence[s, t, agent].sum():.3g}")
            else:
                cells.append(f"{ep.influence[s, t, :, agent - ep.influencers].sum():.3g}")
        if ep.communicates:
            cells.append(str(ep.messages[s, t, agent]))
        if ep.has_message_influence:
            pairs = ep.message_influence[s, t, agent]
            cells.append(", ".join(f"→ {j}: {v:.3g}" for j, v in zip(ep.listeners(agent), pairs)))
            cells += [f"{pairs.sum():.3g}", f"{received[agent]:.3g}"]
        rows.append("<tr>" + "".join(f"<td>{c if '<span' in str(c) else html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    return f'<table style="font-size:90%"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


# ---------------------------------------------------------------------------- the static version
def animate(episodes: Episodes, seed: int, steps: Iterable[int] | None = None, interval: int = 200,
            outline: int | str | None = AUTO, width: float = PANEL_WIDTH, dpi: float = PANEL_DPI) -> FuncAnimation:
    """The explorer's panels as an animation over `steps` (default: the first 80 steps) of
    seed `seed`'s game, one frame per step, `interval` ms apart. Embed it with
    `animation_html` (or `anim.to_jshtml()`)."""
    steps = list(range(min(episodes.num_steps, 80))) if steps is None else [int(t) for t in steps]
    if not steps:
        raise ValueError("animate needs at least one step")
    for t in steps:
        episodes.check_step(t)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ValueError(f"interval must be a positive int (milliseconds), got {interval!r}")
    panels = EpisodePanels(episodes, seed, steps[0], outline=outline, width=width, dpi=dpi)

    def frame(i: int):
        panels.draw(steps[i])
        return []

    anim = FuncAnimation(panels.fig, frame, frames=len(steps), interval=interval, blit=False, repeat=True)
    anim.panels = panels
    return anim


# matplotlib's player takes its button icons from Font Awesome on a CDN; the book loads
# nothing from the network, so `animation_html` drops that stylesheet and uses these glyphs.
PLAYER_GLYPHS = {
    "fa-minus": "\u2212", "fa-fast-backward": "\u21e4", "fa-step-backward": "\u2190",
    "fa-play fa-flip-horizontal": "\u25c0", "fa-pause": "\u275a\u275a", "fa-play": "\u25b6",
    "fa-step-forward": "\u2192", "fa-fast-forward": "\u21e5", "fa-plus": "+",
}
_REMOTE_STYLESHEET = re.compile(r"<link\s+rel=\"stylesheet\"\s+href=\"[^\"]*://[^\"]*\"\s*/?>")
_ICON = re.compile(r'<i class="fa ([^"]+)"></i>')
_FRAME = re.compile(r'"data:image/png;base64,([A-Za-z0-9+/=\\\n]+)"')


def compact_png(data: bytes, colours: int = 64) -> bytes:
    """A PNG re-encoded with a palette of at most `colours` colours (maps are a few flat
    colours; the rest is anti-aliased text): about a quarter of the size."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        quantised = image.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    quantised.save(out, format="png", optimize=True)
    return out.getvalue()


def animation_html(anim: FuncAnimation, default_mode: str = "loop", colours: int | None = 64) -> str:
    """The animation as self-contained HTML: matplotlib's JavaScript player (`to_jshtml`) with
    every frame embedded as a PNG (re-encoded with `colours` palette colours; None keeps
    matplotlib's), the frames rendered at the figure's dpi, and nothing loaded from the
    network (matplotlib's Font Awesome stylesheet is removed and its icons replaced by glyphs)."""
    with rc_context({"savefig.dpi": "figure"}):
        page = anim.to_jshtml(default_mode=default_mode)
    page = _REMOTE_STYLESHEET.sub("", page)
    page = _ICON.sub(lambda m: PLAYER_GLYPHS.get(m.group(1), ""), page)
    if colours is not None:
        def recode(match: re.Match) -> str:
            data = base64.b64decode(match.group(1).replace("\\\n", "").replace("\n", ""))
            return '"data:image/png;base64,' + base64.b64encode(compact_png(data, colours)).decode("ascii") + '"'

        page, frames = _FRAME.subn(recode, page)
        if frames == 0:
            raise RuntimeError("found no embedded frames in matplotlib's animation HTML")
    if "://" in page:
        raise RuntimeError("the animation HTML still refers to the network: matplotlib's template has changed")
    return page


def animation_frames(anim: FuncAnimation) -> int:
    """The number of frames of an animation made by `animate`."""
    return sum(1 for _ in anim.new_frame_seq())


# ---------------------------------------------------------------------------- the widget
def recordable_runs(results_dir: str | Path = "results") -> list[tuple[str, Path]]:
    """("config / preset", folder) of every run under RESULTS/runs that has recorded episodes
    or a checkpoint to record them from; unfinished runs are labelled so."""
    found = []
    for folder in sorted(Path(results_dir).glob(f"{RUNS}/*/*")):
        has_episodes = (folder / EPISODES_FILE).is_file()
        can_record = (folder / "config.json").is_file() and (folder / "checkpoint.pt").is_file()
        if not (has_episodes or can_record):
            continue
        label = f"{folder.parent.name} / {folder.name}"
        if can_record and not (folder / "done").is_file():
            label += " (unfinished)"
        found.append((label, folder))
    return found


def interactive_frontend() -> bool:
    """Whether this code runs in a Jupyter kernel driven by an interactive front end, which can
    show widgets (JupyterLab, Notebook, VS Code), rather than executed headless (papermill,
    nbconvert, nbclient), where a widget would only leave unrendered state behind.

    Front ends send their execute requests with allow_stdin=True (they can answer input());
    nbclient, which papermill and nbconvert use, sends allow_stdin=False. The environment
    variable SSDLIB_WIDGETS=1 or 0 overrides the guess.
    """
    forced = os.environ.get("SSDLIB_WIDGETS")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return False
    try:
        parent = kernel.get_parent("shell")
    except TypeError:  # older ipykernel: one parent for all channels
        parent = kernel.get_parent()
    return bool((parent or {}).get("content", {}).get("allow_stdin", False))


class EpisodeExplorer:
    """An ipywidgets explorer of the recorded episodes of the runs under RESULTS/runs.

    Controls: the run ("config / preset"; a run without episodes.npz is recorded when chosen,
    which takes seconds to a minute), the seed's game, the outline (most influenced agent,
    one agent's field of view, or none), and the step (a slider with a Play button). Shows the
    panels of `EpisodePanels` and a table of the agents at the step (`step_table`).
    `explorer.widget` is the widget; the explorer also displays itself as the last
    expression of a cell. `show(step)` moves to a step (what the slider calls).
    """

    def __init__(self, results_dir: str | Path = "results", device: str = "cpu", width: float = PANEL_WIDTH,
                 dpi: float = PANEL_DPI, interval: int = 250) -> None:
        import ipywidgets as widgets

        self.results_dir, self.device, self.width, self.dpi = Path(results_dir), device, width, dpi
        self.runs = recordable_runs(results_dir)
        self.episodes: Episodes | None = None
        self.panels: EpisodePanels | None = None
        self.run_menu = widgets.Dropdown(options=[(label, str(folder)) for label, folder in self.runs],
                                         value=None, description="run")
        self.seed_menu = widgets.Dropdown(options=[], description="training seed", style={"description_width": "initial"},
                                          layout=widgets.Layout(width="170px"))
        self.outline_menu = widgets.Dropdown(options=[("most influenced", AUTO), ("none", None)],
                                             value=AUTO, description="outline", layout=widgets.Layout(width="260px"))
        self.slider = widgets.IntSlider(value=0, min=0, max=0, description="step", continuous_update=True,
                                        layout=widgets.Layout(width="520px"))
        self.play = widgets.Play(value=0, min=0, max=0, step=1, interval=interval, description="play")
        self.link = widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.image = widgets.Image(format="png")
        self.table = widgets.HTML()
        self.status = widgets.HTML()
        self.widget = widgets.VBox([
            widgets.HBox([self.run_menu, self.seed_menu, self.outline_menu]),
            widgets.HBox([self.play, self.slider]),
            self.status, self.image, self.table,
        ])
        self.run_menu.observe(lambda change: self.load_run(change["new"]), names="value")
        self.seed_menu.observe(lambda change: self._new_panels(), names="value")
        self.outline_menu.observe(lambda change: self._new_panels(), names="value")
        self._loading = False
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        if not self.runs:
            self.status.value = (f"No runs under {html.escape(str(self.results_dir / RUNS))}: train one with "
                                 "<code>python -m ssdlib.train CONFIG --preset PRESET</code>.")
            return
        recorded = [str(folder) for _, folder in self.runs if (folder / EPISODES_FILE).is_file()]
        self.run_menu.value = recorded[0] if recorded else str(self.runs[0][1])

    @property
    def step(self) -> int | None:
        """The step shown (None before a run is loaded)."""
        return None if self.panels is None else self.panels.step

    def load_run(self, folder: str | Path | None) -> None:
        """Show the recorded episodes of the run in `folder` (recording them first if needed)."""
        if folder is None:
            return
        self.status.value = f"loading the episodes of {html.escape(str(folder))} (recording them if needed)…"
        self.episodes = ensure_episodes(folder, self.device)
        ep = self.episodes
        self.status.value = self._run_summary()
        agents = [(f"agent {i}'s view", i) for i in range(ep.num_agents)]
        influence = ep.has_influence or ep.has_message_influence
        first = [("most influenced", AUTO)] if influence else []
        self.panels, self._loading = None, True
        try:  # the menus' observers wait until everything is set
            self.outline_menu.options = first + [("none", None)] + agents
            self.outline_menu.value = AUTO if influence else None
            self.seed_menu.options = [(str(s), s) for s in ep.seeds]
            self.seed_menu.value = ep.seeds[0]
            self.play.max = self.slider.max = ep.num_steps - 1
        finally:
            self._loading = False
        self._new_panels()

    def _run_summary(self) -> str:
        ep = self.episodes
        return (f"<b>{html.escape(ep.config)}</b> on preset {html.escape(ep.preset)}: agents trained for "
                f"{ep.trained_steps:,} env steps per training seed, one recorded game of {ep.num_steps} steps per "
                f"training seed ({', '.join(map(str, ep.seeds))})."
                + (f" Each step every agent says one of {ep.vocabulary} symbols, heard by all at the next step."
                   if ep.communicates else ""))

    def status_text(self) -> str:
        """The status line: the run, then the game shown. The training seed is the seed whose
        trained agents play (the seed menu); the replay seed is the one seed with which every
        game of the recording was played (fresh map and action sampling), the same for all
        training seeds."""
        if self.episodes is None:
            return ""
        if self.panels is None:
            return self._run_summary()
        return (f"{self._run_summary()}<br>Showing <b>training seed {self.panels.seed}</b> "
                f"(replayed with replay seed {self.episodes.replay_seed}), "
                f"step {self.panels.step} of {self.episodes.num_steps}.")

    def _new_panels(self) -> None:
        if self._loading or self.episodes is None or self.seed_menu.value is None:
            return
        step = min(self.slider.value, self.episodes.num_steps - 1)
        self.panels = EpisodePanels(self.episodes, self.seed_menu.value, step, outline=self.outline_menu.value,
                                    width=self.width, dpi=self.dpi)
        self.show(step)

    def show(self, step: int) -> None:
        """Show step `step` of the chosen game (what moving the slider does)."""
        if self.panels is None:
            return
        self.panels.draw(step)
        self.image.value = self.panels.png()
        self.table.value = step_table(self.episodes, self.panels.seed, self.panels.step)
        self.status.value = self.status_text()
        if self.slider.value != self.panels.step:
            self.slider.value = self.panels.step

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
