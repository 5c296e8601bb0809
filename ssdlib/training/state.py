"""The whole training state in one object, and its checkpoint: tensors and plain containers.

Everything that changes while a run trains lives in `TrainingState`: weights, optimiser,
sampling generator, the games (state, step, RNG), the last observation, the agents'
recurrent memory, the reward scheme's memory, the episode accumulators, counters and the
finished episodes' rows. A checkpoint stores exactly that, as tensors, numbers, strings,
lists and dicts, so `torch.load(weights_only=True)` reads it and a file that holds anything
else (an arbitrary pickled object) is refused before it can run.
"""

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..agents import AgentNetworks, LSTMState, Memory
from ..envs.grid import GridGame, Observation
from .episode_stats import EpisodeStats
from .rewards import RewardScheme

CHECKPOINT_FORMAT = 2


@dataclass
class TrainingState:
    net: AgentNetworks
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # action sampling (and PPO's minibatch order)
    env: GridGame
    obs: Observation
    memory: Memory
    reward: RewardScheme
    stats: EpisodeStats
    listening_init: Tensor | None = None  # [S], the listening diagnostic at initialisation
    env_steps: int = 0  # per seed: E games x steps
    wall_time: float = 0.0
    episodes: list[dict] = field(default_factory=list)

    def checkpoint(self) -> dict:
        """The state as tensors and plain containers (what `torch.save` writes)."""
        def lstm(state: LSTMState | None) -> list[Tensor] | None:
            return None if state is None else [state.h, state.c]

        return {
            "format": CHECKPOINT_FORMAT,
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "env": self.env.snapshot(),
            "memory": {"policy": lstm(self.memory.policy), "moa": lstm(self.memory.moa),
                       "heard": self.memory.heard, "spoken_logp": self.memory.spoken_logp},
            "reward_memory": self.reward.memory,
            "stats": self.stats.state_dict(),
            "listening_init": self.listening_init,
            "env_steps": self.env_steps,
            "wall_time": self.wall_time,
            "episodes": self.episodes,
        }

    def restore(self, data: dict) -> None:
        """Continue from `checkpoint()`'s output, exactly where it was taken."""
        if data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {data.get('format')!r} is not {CHECKPOINT_FORMAT}: "
                             "it was written by another version of ssdlib; retrain the run")
        self.net.load_state_dict(data["net"])
        self.optimizer.load_state_dict(data["optimizer"])
        self.generator.set_state(data["generator"].cpu())
        self.obs = self.env.restore(data["env"])
        moa = data["memory"]["moa"]
        self.memory = Memory(LSTMState(*data["memory"]["policy"]), None if moa is None else LSTMState(*moa),
                             data["memory"].get("heard"), data["memory"].get("spoken_logp"))
        self.reward.memory = data["reward_memory"]
        self.stats.load_state_dict(data["stats"])
        self.listening_init = data["listening_init"]
        self.env_steps, self.wall_time = int(data["env_steps"]), float(data["wall_time"])
        self.episodes = list(data["episodes"])


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """Read a checkpoint file with `torch.load(weights_only=True)`: tensors and plain
    containers only. Anything else is refused with an error naming the file."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"refusing to load checkpoint {str(path)!r}: it holds objects other than tensors, "
                         f"numbers, strings, lists and dicts, which could run code when unpickled ({error})") from None
