"""Drawing recorded steps: the paper's Figures 2 and 14 (a moment of high influence on the map
and in the influencee's view) and influence over an episode."""

import numpy as np
import pandas as pd
import torch

from ..envs import palette
from ..envs.geometry import VIEW_RADIUS, VIEW_SIZE
from ..envs.views import field_of_view, in_view
from ..episodes.analysis import _require_influence
from ..episodes.format import Episodes

INFLUENCER_COLOUR = "white"  # outlines on the map (the paper's Figure 14 draws the influencer's view in white)
INFLUENCEE_COLOUR = "#ffe119"  # and the influencee's in yellow (Figure 2)


def _cell_patch(row: int, col: int, colour: str, linewidth: float = 2.0, linestyle: str = "-"):
    from matplotlib.patches import Rectangle

    return Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor=colour, linewidth=linewidth,
                     linestyle=linestyle)


def fov_patch(pos, height: int, width: int, colour: str, linewidth: float = 2.0, linestyle: str = "-"):
    """A matplotlib Rectangle outlining the field of view of an agent at `pos` (row, col)."""
    from matplotlib.patches import Rectangle

    top, bottom, left, right = field_of_view(pos, height, width)
    return Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False,
                     edgecolor=colour, linewidth=linewidth, linestyle=linestyle)


def plot_moment(ax_map, ax_view, episodes: Episodes, seed: int, step: int, influencer: int, influencee: int) -> dict:
    """The paper's Figures 2 and 14 for one step of one seed's game: on `ax_map` the full map
    with the influencer (white) and influencee (yellow) outlined and their fields of view
    drawn (the influencee's solid, the influencer's dashed); on `ax_view` the influencee's own
    egocentric view (forward up), with the influencer outlined when it is in view. Titles give
    the influence of the pair and both agents' actions. Returns the patches drawn on the map
    ({"influencer", "influencee", "influencee_view", "influencer_view"})."""
    from .plotting import show_map

    _require_influence(episodes)
    s = episodes.seed_index(seed)
    t = episodes.check_step(step)
    k = episodes.check_agent(influencer, "influencer")
    j = episodes.check_agent(influencee, "influencee")
    if k >= episodes.influencers:
        raise ValueError(f"influencer {k!r} is not an influencer: agents 0..{episodes.influencers - 1} are")
    if j < episodes.influencers:
        raise ValueError(f"influencee {j!r} is not an influencee: agents {episodes.influencers}..{episodes.num_agents - 1} are")
    value = float(episodes.influence[s, t, k, j - episodes.influencers])
    names = episodes.action_names
    act_k, act_j = names[episodes.actions[s, t, k]], names[episodes.actions[s, t, j]]
    h, w = episodes.height, episodes.width
    pos_k, pos_j = episodes.pos[s, t, k], episodes.pos[s, t, j]

    show_map(ax_map, palette.to_rgb(torch.from_numpy(episodes.maps[s, t])).numpy(),
             f"seed {seed}, step {t}: influence {value:.3g}\nagent {k} {act_k}, agent {j} {act_j}")
    patches = {
        "influencee_view": fov_patch(pos_j, h, w, INFLUENCEE_COLOUR, 2.0),
        "influencer_view": fov_patch(pos_k, h, w, INFLUENCER_COLOUR, 1.2, "--"),
        "influencer": _cell_patch(*pos_k, INFLUENCER_COLOUR, 2.2),
        "influencee": _cell_patch(*pos_j, INFLUENCEE_COLOUR, 2.2),
    }
    for patch in patches.values():
        ax_map.add_patch(patch)
    ax_map.set_xlim(-0.6, w - 0.4)
    ax_map.set_ylim(h - 0.4, -0.6)

    view = episodes.views[s, t, j]
    sees = bool(in_view(pos_j, pos_k))
    show_map(ax_view, palette.to_rgb(torch.from_numpy(view)).numpy(),
             f"agent {j}'s view\n(agent {k} {'in view' if sees else 'out of view'})")
    ax_view.add_patch(_cell_patch(VIEW_RADIUS, VIEW_RADIUS, INFLUENCEE_COLOUR, 2.0))
    if sees:
        for row, col in np.argwhere(view == palette.AGENT + k):
            ax_view.add_patch(_cell_patch(row, col, INFLUENCER_COLOUR, 2.0))
    ax_view.set_xlim(-0.6, VIEW_SIZE - 0.4)
    ax_view.set_ylim(VIEW_SIZE - 0.4, -0.6)
    return patches


def moment_figure(episodes: Episodes, seed: int, step: int, influencer: int, influencee: int, width: float = 8.0):
    """A pyplot figure of one moment (`plot_moment`): the map, then the influencee's view,
    with a legend of the outlines below."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ratios = [episodes.width / episodes.height, 0.7]  # both panels equally tall, the view smaller
    fig, (ax_map, ax_view) = plt.subplots(1, 2, figsize=(width, width / sum(ratios) + 1.0),
                                          gridspec_kw={"width_ratios": ratios})
    plot_moment(ax_map, ax_view, episodes, int(seed), int(step), int(influencer), int(influencee))
    handles = [
        Patch(facecolor="none", edgecolor=INFLUENCER_COLOUR, linewidth=2,
              label=f"influencer, agent {int(influencer)} (its view dashed)"),
        Patch(facecolor="none", edgecolor=INFLUENCEE_COLOUR, linewidth=2, label=f"influencee, agent {int(influencee)}, and its view"),
    ]
    fig.tight_layout()
    for ax in (ax_map, ax_view):
        ax.apply_aspect()  # the boxes the images really take
    below = min(ax_map.get_position().y0, ax_view.get_position().y0)
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, below - 0.01), ncol=2, frameon=True,
               facecolor="0.3", edgecolor="0.3", labelcolor="white")
    return fig


def moments_figure(episodes: Episodes, moments: pd.DataFrame, ncols: int = 2, pair_width: float = 5.0):
    """A pyplot figure of several moments (rows of `high_influence_moments`), `ncols` per
    row, each drawn by `plot_moment` (map, then the influencee's view)."""
    import matplotlib.pyplot as plt

    if moments.empty:
        raise ValueError("moments_figure needs at least one moment")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    ncols = min(ncols, len(moments))
    nrows = -(-len(moments) // ncols)
    ratios = [episodes.width / episodes.height, 0.7]
    panel_height = pair_width / sum(ratios) + 0.8
    fig, axes = plt.subplots(nrows, 2 * ncols, figsize=(pair_width * ncols, panel_height * nrows), squeeze=False,
                             gridspec_kw={"width_ratios": ratios * ncols})
    for i, row in enumerate(moments.itertuples()):
        r, c = divmod(i, ncols)
        plot_moment(axes[r, 2 * c], axes[r, 2 * c + 1], episodes, int(row.seed), int(row.step),
                    int(row.influencer), int(row.influencee))
        for ax in axes[r, 2 * c: 2 * c + 2]:
            ax.title.set_fontsize(8)
    for ax in axes.flat[2 * len(moments):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_influence_over_time(ax, episodes: Episodes, seed: int, influencer: int = 0, colour: str | None = None) -> None:
    """An influencer's exerted influence (KL or JSD, summed over influencees) along one
    recorded game, with its episode mean dashed: how sparse in time the influence is."""
    _require_influence(episodes)
    s = episodes.seed_index(seed)
    k = episodes.check_agent(influencer, "influencer")
    if k >= episodes.influencers:
        raise ValueError(f"influencer {k!r} is not an influencer: agents 0..{episodes.influencers - 1} are")
    given = episodes.exerted_given()[s, :, k]
    line, = ax.plot(np.arange(episodes.num_steps), given, color=colour, linewidth=0.9, label=f"agent {k}")
    ax.axhline(given.mean(), color=line.get_color(), linestyle="--", linewidth=1.0,
               label=f"agent {k}'s mean ({(given > given.mean()).mean():.0%} of steps above)")
    ax.set_xlabel("step")
    ax.set_ylabel("exerted influence (nats)")
