"""Batched Cleanup, Harvest, Box Trapped and physical deception on torch (see docs of `make_env`).

`ENVIRONMENTS` holds the grid games; physical deception, a particle game (MPE), is in
`PARTICLE_ENVIRONMENTS`: code written for the grid games (views, maps, palettes) keeps
iterating over `ENVIRONMENTS` only.
"""

import torch

from .box_trapped import BoxTrapped
from .cleanup import Cleanup
from .geometry import ACTION_NAMES
from .grid import GridGame, GridState, Observation
from .harvest import Harvest
from .maps import load_map, packaged_map_names
from .palette import PALETTE, to_rgb
from .physical_deception import PhysicalDeception

ENVIRONMENTS: dict[str, type[GridGame]] = {"cleanup": Cleanup, "harvest": Harvest, "box_trapped": BoxTrapped}
PARTICLE_ENVIRONMENTS: dict[str, type[PhysicalDeception]] = {"physical_deception": PhysicalDeception}
OPTIONS = {"cleanup": {"horizon", "map"}, "harvest": {"horizon", "map", "neighbourhood"}, "box_trapped": {"horizon", "map"},
           "physical_deception": {"horizon"}}


def make_env(
    name: str,
    num_envs: int = 1,
    num_agents: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    **options,
) -> GridGame | PhysicalDeception:
    """B games of `name` ("cleanup", "harvest", "box_trapped", "physical_deception") stepped
    at once on `device`.

    num_agents defaults to 5 (2 in Box Trapped; 3 in physical deception: 1 adversary and 2
    good agents). Options: `horizon` (steps per episode; 1000, 100 in Box Trapped, 25 in
    physical deception), `map` (a packaged map name or a literal ASCII map) and, in Harvest,
    `neighbourhood` ("square", the reference's 3x3, or "disc", radius 2).
    """
    if name not in ENVIRONMENTS and name not in PARTICLE_ENVIRONMENTS:
        raise ValueError(f"unknown env {name!r}; choose from {sorted(ENVIRONMENTS) + sorted(PARTICLE_ENVIRONMENTS)}")
    unknown = set(options) - OPTIONS[name]
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for {name}; allowed: {sorted(OPTIONS[name])}")
    if name in PARTICLE_ENVIRONMENTS:
        game = PARTICLE_ENVIRONMENTS[name]
        return game(num_envs, game.default_num_agents if num_agents is None else num_agents,
                    device=device, seed=seed, **options)
    cls = ENVIRONMENTS[name]
    grid_map = load_map(options.pop("map", cls.default_map))
    if num_agents is None:
        num_agents = 2 if name == "box_trapped" else 5
    return cls(grid_map, num_envs, num_agents, device=device, seed=seed, **options)


__all__ = [
    "ACTION_NAMES", "BoxTrapped", "Cleanup", "ENVIRONMENTS", "GridGame", "GridState", "Harvest",
    "Observation", "PALETTE", "PARTICLE_ENVIRONMENTS", "PhysicalDeception", "load_map", "make_env",
    "packaged_map_names", "to_rgb",
]
