"""Episodes of physical deception drawn with matplotlib, from replays (`replay.Replay`).

Colours are the game's own (MPE's simple_adversary): target landmark green, the other
landmark (the decoy) dark grey, adversary red, good agents blue; sizes are the game's radii
(agents 0.15, landmarks 0.08), so overlaps on the picture are overlaps in the game. Landmarks
are drawn over the agents (the game draws them under), so that an agent standing on the
target does not hide it.
"""

import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from .replay import Replay

TARGET, DECOY = (0.15, 0.65, 0.15), (0.25, 0.25, 0.25)
ADVERSARY, GOOD = (0.85, 0.35, 0.35), (0.35, 0.35, 0.85)
AGENT_RADIUS, LANDMARK_RADIUS = 0.15, 0.08


def episode_limits(replay: Replay, seed: int, game: int, margin: float = 0.25) -> tuple[float, float, float, float]:
    """A square window holding every agent and landmark of one episode."""
    points = np.concatenate([replay.positions[seed, :, game].reshape(-1, 2).numpy(),
                             replay.landmarks[seed, game].numpy()])
    centre = (points.max(0) + points.min(0)) / 2
    half = (points.max(0) - points.min(0)).max() / 2 + margin
    return centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half


def draw_frame(ax: Axes, replay: Replay, seed: int, game: int, t: int,
               limits: tuple[float, float, float, float]) -> None:
    """The episode at step t (0 = reset), with each agent's path so far as a thin line."""
    goal = int(replay.goal[seed, game])
    for k, landmark in enumerate(replay.landmarks[seed, game].numpy()):
        ax.add_patch(Circle(landmark, LANDMARK_RADIUS, facecolor=TARGET if k == goal else DECOY, edgecolor="white",
                            lw=0.8, zorder=4))
    path = replay.positions[seed, :t + 1, game].numpy()  # [t+1, A, 2]
    for agent in range(path.shape[1]):
        colour = ADVERSARY if agent == 0 else GOOD
        ax.plot(path[:, agent, 0], path[:, agent, 1], color=colour, lw=1, alpha=0.6, zorder=2)
        ax.add_patch(Circle(path[-1, agent], AGENT_RADIUS, facecolor=colour, edgecolor="white", alpha=0.85, zorder=3))
    ax.set_xlim(limits[0], limits[1])
    ax.set_ylim(limits[2], limits[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("#b0b0b0")


def legend_handles() -> list[Line2D]:
    """Legend entries for the pictures: the landmarks and the two kinds of agent."""
    return [Line2D([], [], marker="o", ls="", color=colour, markersize=size, label=name) for colour, size, name in
            ((TARGET, 6, "target landmark"), (DECOY, 6, "decoy landmark"), (ADVERSARY, 10, "adversary"),
             (GOOD, 10, "good agents"))]


def episode_strip(fig: Figure, replays: dict[str, Replay], seed: int, game: int, steps: list[int]) -> None:
    """One row per replay (label -> replay; same seeds and games, so the same start), one column
    per step of `steps`."""
    axes = fig.subplots(len(replays), len(steps), squeeze=False)
    for row, (label, replay) in enumerate(replays.items()):
        limits = episode_limits(replay, seed, game)
        for col, t in enumerate(steps):
            draw_frame(axes[row, col], replay, seed, game, t, limits)
            if row == 0:
                axes[row, col].set_title(f"t = {t}")
        axes[row, 0].set_ylabel(label, rotation=0, ha="right", va="center")


def episode_animation(replays: dict[str, Replay], seed: int, game: int, interval: int = 250,
                      width: float = 7.0) -> FuncAnimation:
    """The same episode under each replay (label -> replay), one panel per replay side by side,
    one frame per step from the reset to the horizon. Embed it with
    `ssdlib.book.explorer.animation_html` (self-contained, nothing loaded from the network)."""
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ValueError(f"interval must be a positive int (milliseconds), got {interval!r}")
    steps = next(iter(replays.values())).positions.shape[1]
    fig = Figure(figsize=(width, width / len(replays) + 0.8), dpi=96, layout="constrained")
    axes = fig.subplots(1, len(replays), squeeze=False)[0]
    limits = {label: episode_limits(replay, seed, game) for label, replay in replays.items()}

    def draw(t: int) -> None:
        for ax, (label, replay) in zip(axes, replays.items()):
            ax.clear()
            draw_frame(ax, replay, seed, game, t, limits[label])
            ax.set_title(label, fontsize=9)
        fig.suptitle(f"step {t} of {steps - 1}", fontsize=10)

    draw(0)
    return FuncAnimation(fig, draw, frames=range(steps), interval=interval)
