"""Presets: how long a Theory-of-Mind run trains and on how many games per seed.

One PPO iteration plays one 25-step episode in each of a seed's `num_games` games and then
updates on those 25 x num_games steps, so the length is a whole number of iterations.
The paper's budget is unknown; the authors' RLlib template of the same period defaults to
1e7 env steps with RLlib's 4000-step batches (tom.md, [A]), which the paper preset follows.
"""

from dataclasses import asdict, dataclass

from ..envs.physical_deception import HORIZON


@dataclass(frozen=True)
class Preset:
    name: str
    total_steps: int  # env steps per seed: iterations x HORIZON x num_games
    num_games: int  # games per seed, each playing one episode per iteration
    checkpoint_seconds: float = 300.0

    @property
    def steps_per_iteration(self) -> int:
        return HORIZON * self.num_games

    @property
    def iterations(self) -> int:
        return self.total_steps // self.steps_per_iteration

    def record(self) -> dict:
        """The fields a run folder's config.json stores."""
        return asdict(self)


PRESETS = {
    "smoke": Preset("smoke", total_steps=4 * HORIZON * 8, num_games=8, checkpoint_seconds=0.0),
    "cpu": Preset("cpu", total_steps=800_000, num_games=160, checkpoint_seconds=120.0),
    "gpu": Preset("gpu", total_steps=10_240_000, num_games=1024),
    "paper": Preset("paper", total_steps=10_000_000, num_games=160),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]
