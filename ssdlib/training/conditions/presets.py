"""Presets scale a condition: env steps per seed, games per seed, and (for tests) the horizon.

The paper trains for 5e8 env steps; the curriculum length C and the learning-rate
annealing are rescaled to the preset's length, so a shorter run keeps the paper's schedule
shape. A preset may give one game a different length (`steps_by_env`): on the cpu preset the
social dilemmas get 10 episodes per game and 5 seeds (two CPU cores train the ten conditions
of Experiment I and the baselines in about an hour, the four MOA conditions in about another),
while Box Trapped, 100 times cheaper per episode, keeps the 2e6
steps its openers need to separate. `get_preset(name, env)` resolves that into the preset a
run of `env` records and trains with.
"""

from dataclasses import dataclass, replace

PAPER_STEPS = 5e8


@dataclass(frozen=True)
class Preset:
    name: str
    total_steps: int  # env steps per seed (games x steps)
    num_envs: int  # games per seed
    horizon: int | None = None  # None: the game's own (1000; Box Trapped 100)
    checkpoint_seconds: float = 300.0
    steps_by_env: tuple[tuple[str, int], ...] = ()  # (game, total_steps) where it differs

    def for_env(self, env: str) -> "Preset":
        """The preset as a run of `env` uses it: total_steps resolved, no overrides left."""
        return replace(self, total_steps=dict(self.steps_by_env).get(env, self.total_steps), steps_by_env=())

    def record(self) -> dict:
        """The fields a run folder's config.json stores (enough to rebuild it with Preset(**record))."""
        if self.steps_by_env:
            raise ValueError(f"preset {self.name!r} is not resolved for one game; call for_env first")
        return {"name": self.name, "total_steps": self.total_steps, "num_envs": self.num_envs,
                "horizon": self.horizon, "checkpoint_seconds": self.checkpoint_seconds}

    @property
    def scale(self) -> float:
        return self.total_steps / PAPER_STEPS


PRESETS = {
    "smoke": Preset("smoke", total_steps=1_600, num_envs=4, horizon=100, checkpoint_seconds=0.0),
    "cpu": Preset("cpu", total_steps=320_000, num_envs=32, checkpoint_seconds=60.0,
                  steps_by_env=(("box_trapped", 2_000_000),)),
    "gpu": Preset("gpu", total_steps=100_000_000, num_envs=1024),
    # `python -m ssdlib.gpu_run`: trained slot by slot on one GPU, 5 seeds at once (2,560 games);
    # 40 episodes of 512 games per seed (>= 2e7 steps), checkpointed every minute
    "campaign": Preset("campaign", total_steps=20_480_000, num_envs=512, checkpoint_seconds=60.0),
    "paper": Preset("paper", total_steps=500_000_000, num_envs=1024),
}


def get_preset(name: str, env: str | None = None) -> Preset:
    """The preset called `name`; resolved for one game when `env` is given."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name] if env is None else PRESETS[name].for_env(env)
