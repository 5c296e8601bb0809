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
influence) with a line at the current step.
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
from matplotlib import rc_context
from matplotlib.animation import FuncAnimation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec, GridSpecFromSubplotSpec

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


def agent_colour(agent: int) -> tuple[float, float, float]:
    """The colour agent `agent` has on the map, as matplotlib RGB."""
    return tuple(float(x) / 255 for x in palette.AGENT_COLOURS[agent])


# ---------------------------------------------------------------------------- the panels
class EpisodePanels:
    """One figure showing one step of one seed's recorded game; `draw(step)` moves it to
    another step, updating the artists in place (the figure is built once).

    outline: AUTO (the influencee most influenced at the step, its field of view, and its
    influencer; no outline without influence), an agent id (that agent's field of view), or
    None. The figure is a bare matplotlib Figure (not pyplot's), so it is not shown inline by
    itself; `png()` renders it.
    """

    def __init__(self, episodes: Episodes, seed: int, step: int = 0, outline: int | str | None = AUTO,
                 width: float = 9.0, dpi: float = 72) -> None:
        self.episodes = episodes
        self.seed = seed
        self.index = episodes.seed_index(seed)
        if outline is not None and outline != AUTO:
            outline = episodes.check_agent(outline, "outline agent")
        self.outline = outline
        ep, n = episodes, episodes.num_agents
        self.returns = ep.returns()[self.index]  # [T, N]

        if ep.width <= 1.2 * ep.height:  # a tall map (Cleanup): the views in two rows beside it
            view_cols = -(-n // 2)
            ratios = [ep.width / ep.height, view_cols / 2 * 0.8]  # the map as tall as two rows of views
            top = width * 0.78 / sum(ratios)
            height = top + 2.6
            grid = GridSpec(2, 2, width_ratios=ratios,
                            height_ratios=[top, 1.5], left=0.08, right=0.82, top=1 - 0.55 / height, bottom=0.09,
                            wspace=0.06, hspace=0.3)
            map_cell, plot_cell = grid[0, 0], grid[1, :]
            views = GridSpecFromSubplotSpec(2, view_cols, subplot_spec=grid[0, 1], wspace=0.12, hspace=0.4)
        else:  # a wide map (Harvest): the views in one row below it
            view_cols = n
            map_height = width * 0.78 * ep.height / ep.width
            view_height = min(width * 0.78 / n, 1.6) + 0.3
            height = map_height + view_height + 2.6
            grid = GridSpec(3, 1, height_ratios=[map_height, view_height, 1.5], left=0.08, right=0.82,
                            top=1 - 0.55 / height, bottom=0.07, hspace=0.35)
            map_cell, plot_cell = grid[0, 0], grid[2, 0]
            views = GridSpecFromSubplotSpec(1, n, subplot_spec=grid[1, 0], wspace=0.12)
        self.fig = Figure(figsize=(width, height), dpi=dpi)
        FigureCanvasAgg(self.fig)
        self.ax_map = self.fig.add_subplot(map_cell)
        self.ax_views = [self.fig.add_subplot(views[i // view_cols, i % view_cols]) for i in range(n)]
        self.ax_plot = self.fig.add_subplot(plot_cell)
        self.title = self.fig.suptitle("", fontsize=9, x=0.04, ha="left")

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
        self._plot_series()
        self.step = -1
        self.draw(step)

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
            ax.set_ylabel("influence", fontsize=8)
            title = "influence of influencer on influencee (agent ids)"
        else:
            for agent in range(ep.num_agents):
                ax.plot(steps, self.returns[:, agent], color=agent_colour(agent), linewidth=1.2, label=f"agent {agent}")
            ax.set_ylabel("return", fontsize=8)
            title = "extrinsic return so far (no influence in this condition)"
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlim(0, max(ep.num_steps - 1, 1))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, ncol=1 + (len(ax.lines) > 8))
        self.cursor = ax.axvline(0, color="0.25", linewidth=1.0)

    def outlined(self, step: int) -> tuple[int | None, int | None]:
        """(influencer, agent whose field of view is outlined) at `step`, each None if none."""
        ep = self.episodes
        if self.outline is None:
            return None, None
        if self.outline != AUTO:
            return None, int(self.outline)
        if not ep.has_influence:
            return None, None
        k, j = np.unravel_index(np.argmax(ep.influence[self.index, step]), ep.influence.shape[2:])
        return int(k), int(ep.influencers + j)

    def draw(self, step: int) -> None:
        """Show step `step` (updates the artists; `png()` renders)."""
        ep, s = self.episodes, self.index
        t = ep.check_step(step)
        names = ep.action_names
        self.map_image.set_data(self._rgb(ep.maps[s, t]))
        for agent, image in enumerate(self.view_images):
            image.set_data(self._rgb(ep.views[s, t, agent]))
            reward = ep.rewards[s, t, agent]
            self.ax_views[agent].set_title(
                f"{agent}: {names[ep.actions[s, t, agent]].lower()}\nr {reward:+g}, return {self.returns[t, agent]:g}",
                fontsize=7, color="black")
        influencer, watched = self.outlined(t)
        title = f"{ep.config} [{ep.preset}], seed {self.seed}: step {t} of {ep.num_steps}"
        for patch in (self.fov, self.mark_influencee, self.mark_influencer):
            patch.set_visible(False)
        if watched is not None:
            top, bottom, left, right = field_of_view(ep.pos[s, t, watched], ep.height, ep.width)
            self.fov.set_bounds(left - 0.5, top - 0.5, right - left + 1, bottom - top + 1)
            self.fov.set_visible(True)
            row, col = ep.pos[s, t, watched]
            self.mark_influencee.set_xy((col - 0.5, row - 0.5))
            self.mark_influencee.set_visible(True)
            title += f"; agent {watched}'s view outlined"
        if influencer is not None:
            row, col = ep.pos[s, t, influencer]
            self.mark_influencer.set_xy((col - 0.5, row - 0.5))
            self.mark_influencer.set_visible(True)
            value = ep.influence[s, t, influencer, watched - ep.influencers]
            title += f" (most influenced, by agent {influencer}: {value:.3g})"
        self.title.set_text(title)
        self.cursor.set_xdata([t, t])
        self.step = t

    def png(self, dpi: float | None = None) -> bytes:
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png", dpi=dpi or self.fig.dpi)
        return buffer.getvalue()


def step_table(episodes: Episodes, seed: int, step: int) -> str:
    """An HTML table of every agent at one step: role, position, facing, action, reward,
    return so far, and the influence it exerts (influencers) or receives (influencees)."""
    ep = episodes
    s, t = ep.seed_index(seed), ep.check_step(step)
    returns = ep.returns()[s, t]
    header = ["agent", "role", "row, col", "facing", "action", "reward", "return"]
    if ep.has_influence:
        header.append("influence (given / received)")
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
        rows.append("<tr>" + "".join(f"<td>{c if '<span' in str(c) else html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    return f'<table style="font-size:90%"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


# ---------------------------------------------------------------------------- the static version
def animate(episodes: Episodes, seed: int, steps: Iterable[int] | None = None, interval: int = 200,
            outline: int | str | None = AUTO, width: float = 9.0, dpi: float = 72) -> FuncAnimation:
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

    def __init__(self, results_dir: str | Path = "results", device: str = "cpu", width: float = 9.0,
                 dpi: float = 72, interval: int = 250) -> None:
        import ipywidgets as widgets

        self.results_dir, self.device, self.width, self.dpi = Path(results_dir), device, width, dpi
        self.runs = recordable_runs(results_dir)
        self.episodes: Episodes | None = None
        self.panels: EpisodePanels | None = None
        self.run_menu = widgets.Dropdown(options=[(label, str(folder)) for label, folder in self.runs],
                                         value=None, description="run")
        self.seed_menu = widgets.Dropdown(options=[], description="seed", layout=widgets.Layout(width="160px"))
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
        self.status.value = (f"<b>{html.escape(ep.config)}</b> on preset {html.escape(ep.preset)}, agents trained "
                             f"for {ep.trained_steps:,} env steps per seed; {ep.num_steps} steps per game, "
                             f"replay seed {ep.replay_seed}.")
        agents = [(f"agent {i}'s view", i) for i in range(ep.num_agents)]
        first = [("most influenced", AUTO)] if ep.has_influence else []
        self.panels, self._loading = None, True
        try:  # the menus' observers wait until everything is set
            self.outline_menu.options = first + [("none", None)] + agents
            self.outline_menu.value = AUTO if ep.has_influence else None
            self.seed_menu.options = [(str(s), s) for s in ep.seeds]
            self.seed_menu.value = ep.seeds[0]
            self.play.max = self.slider.max = ep.num_steps - 1
        finally:
            self._loading = False
        self._new_panels()

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
        if self.slider.value != self.panels.step:
            self.slider.value = self.panels.step

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
