"""Presets scale a condition: env steps per seed, games per seed, and (for tests) the horizon.

The paper trains for 5e8 env steps; the curriculum length C and the learning-rate
annealing are rescaled to the preset's length, so a shorter run keeps the paper's schedule
shape.
"""

from dataclasses import dataclass

PAPER_STEPS = 5e8


@dataclass(frozen=True)
class Preset:
    name: str
    total_steps: int  # env steps per seed (games x steps)
    num_envs: int  # games per seed
    horizon: int | None = None  # None: the game's own (1000; Box Trapped 100)
    checkpoint_seconds: float = 300.0

    @property
    def scale(self) -> float:
        return self.total_steps / PAPER_STEPS


PRESETS = {
    "smoke": Preset("smoke", total_steps=1_600, num_envs=4, horizon=100, checkpoint_seconds=0.0),
    "cpu": Preset("cpu", total_steps=2_000_000, num_envs=32, checkpoint_seconds=60.0),
    "gpu": Preset("gpu", total_steps=100_000_000, num_envs=1024),
    "paper": Preset("paper", total_steps=500_000_000, num_envs=1024),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]
