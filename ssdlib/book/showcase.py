"""What the book's environments chapter shows: scripted scenes of the rules.

A scene places the agents by hand on a packaged map and plays a few fixed actions, keeping a
frame (the rendered map) after each step along with the rewards and events; the book draws
the frames with `ssdlib.book.plotting.show_frames`. The chapter's random-play table comes from
`ssdlib.experiments.random_policy`, the one source of the uniform-random floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..envs import make_env
from ..envs.geometry import CLEAN, DOWN, FIRE, LEFT, MOVE_UP, OPEN, RIGHT, STAY, UP
from ..envs.grid import GridGame


@dataclass
class Scene:
    """A scripted episode: frames[0] is the map before the first step, frames[t] after step t.

    rewards: float [steps, N]; events: per step, the env's info dict for game 0 as numpy.
    """

    game: str
    description: str
    frames: list[tuple[str, np.ndarray]] = field(default_factory=list)
    rewards: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    events: list[dict[str, np.ndarray]] = field(default_factory=list)


def place_agents(env: GridGame, cells: list[tuple[int, int]], facings: list[int]) -> None:
    """Put agent i on map cell cells[i] = (row, col) facing facings[i], in every game."""
    if len(cells) != env.num_agents or len(facings) != env.num_agents:
        raise ValueError(f"need a cell and a facing for each of the {env.num_agents} agents")
    if len(set(cells)) != len(cells):
        raise ValueError(f"two agents on one cell: {cells}")
    for r, c in cells:
        if not (0 <= r < env.height and 0 <= c < env.width) or env.map.rows[r][c] in "@#":
            raise ValueError(f"cell {(r, c)} is a wall or off the map {env.map.name!r}")
    b, w = env.num_envs, env.width
    env.state.pos = torch.tensor([r * w + c for r, c in cells], device=env.device).expand(b, -1).clone()
    env.state.orient = torch.tensor(facings, device=env.device).expand(b, -1).clone()


def play(env: GridGame, game: str, description: str, first_title: str,
         script: list[tuple[list[int], str]]) -> Scene:
    """Play `script`, a list of (actions of the N agents, frame title), from the current state."""
    scene = Scene(game, description, [(first_title, env.render(0))])
    rewards = []
    for actions, title in script:
        a = torch.tensor(actions, device=env.device).expand(env.num_envs, -1).clone()
        _, reward, _, info = env.step(a)
        rewards.append(reward[0].cpu().numpy())
        scene.events.append({k: v[0].cpu().numpy() for k, v in info.items()})
        scene.frames.append((title, env.render(0)))
    scene.rewards = np.stack(rewards)
    return scene


def penalty_beam_scene(seed: int = 0) -> Scene:
    """Harvest: agent 0 fires the penalty beam at agent 1, three cells ahead of it."""
    env = make_env("harvest", num_envs=1, seed=seed)
    env.reset()
    place_agents(env, [(14, 2), (14, 5), (1, 2), (1, 6), (2, 3)], [RIGHT, LEFT, DOWN, DOWN, DOWN])
    return play(env, "harvest", "Agent 0 (blue, facing right) fires the penalty beam; agent 1 stands in it.",
                "before: agent 0 faces agent 1", [([FIRE] + [STAY] * 4, "after FIRE: the beam (yellow)")])


def cleaning_scene(seed: int = 0, steps: int = 3) -> Scene:
    """Cleanup: agent 0 stands on the stream facing the polluted river and cleans, stepping forward."""
    env = make_env("cleanup", num_envs=1, seed=seed)
    env.reset()
    place_agents(env, [(9, 10), (4, 8), (5, 10), (13, 8), (15, 9)], [LEFT, DOWN, DOWN, UP, UP])
    idle = [STAY] * 4
    script = []
    for i in range(steps):
        script.append(([CLEAN] + idle, f"after CLEAN #{i + 1}"))
        if i < steps - 1:
            script.append(([MOVE_UP] + idle, f"agent 0 steps forward ({i + 1})"))
    scene = play(env, "cleanup", "Agent 0 (blue, facing left) cleans waste with the cleaning beam, "
                 "stepping into the river between cleans.", "before: waste (grey-blue) in the river", script)
    scene.frames = [scene.frames[0]] + [f for f, (_, title) in zip(scene.frames[1:], script) if "CLEAN" in title]
    return scene


def box_trapped_scene(seed: int = 0) -> Scene:
    """Box Trapped: the opener uses OPEN, then the trapped agent walks out of the box."""
    env = make_env("box_trapped", num_envs=1, seed=seed)
    env.reset()
    opener, trapped = (3, 3), (5, 5)
    place_agents(env, [opener, trapped], [DOWN, UP])
    return play(env, "box_trapped", "Agent 0 (blue) opens the box; agent 1 (dark blue) walks out.",
                "at reset: agent 1 is boxed in", [
                    ([OPEN, STAY], "after OPEN: the box is gone"),
                    ([STAY, MOVE_UP], "agent 1 steps out"),
                    ([STAY, MOVE_UP], "and on, towards the apples"),
                ])
