"""Batched Cleanup, Harvest and Box Trapped on torch (see docs of `make_env`)."""

import torch

from .box_trapped import BoxTrapped
from .cleanup import Cleanup
from .geometry import ACTION_NAMES
from .grid import GridGame, GridState, Observation
from .harvest import Harvest
from .maps import load_map, packaged_map_names
from .palette import PALETTE, to_rgb

ENVIRONMENTS: dict[str, type[GridGame]] = {"cleanup": Cleanup, "harvest": Harvest, "box_trapped": BoxTrapped}
OPTIONS = {"cleanup": {"horizon", "map"}, "harvest": {"horizon", "map", "neighbourhood"}, "box_trapped": {"horizon", "map"}}


def make_env(
    name: str,
    num_envs: int = 1,
    num_agents: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    **options,
) -> GridGame:
    """B games of `name` ("cleanup", "harvest", "box_trapped") stepped at once on `device`.

    num_agents defaults to 5 (2 in Box Trapped). Options: `horizon` (steps per episode;
    1000, or 100 in Box Trapped), `map` (a packaged map name or a literal ASCII map) and, in
    Harvest, `neighbourhood` ("square", the reference's 3x3, or "disc", radius 2).
    """
    if name not in ENVIRONMENTS:
        raise ValueError(f"unknown env {name!r}; choose from {sorted(ENVIRONMENTS)}")
    unknown = set(options) - OPTIONS[name]
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for {name}; allowed: {sorted(OPTIONS[name])}")
    cls = ENVIRONMENTS[name]
    grid_map = load_map(options.pop("map", cls.default_map))
    if num_agents is None:
        num_agents = 2 if name == "box_trapped" else 5
    return cls(grid_map, num_envs, num_agents, device=device, seed=seed, **options)


__all__ = [
    "ACTION_NAMES", "BoxTrapped", "Cleanup", "ENVIRONMENTS", "GridGame", "GridState", "Harvest",
    "Observation", "PALETTE", "load_map", "make_env", "packaged_map_names", "to_rgb",
]
