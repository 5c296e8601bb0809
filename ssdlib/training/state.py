"""The whole training state in one object, and its checkpoint: tensors and plain containers.

Everything that changes while a run trains lives in `TrainingState`: weights, optimiser,
sampling generator, the games (state, step, RNG), the last observation, the agents'
recurrent memory, the reward scheme's memory, the episode accumulators, counters and the
finished episodes' rows. A checkpoint stores exactly that (the recurrent memory only where it
is not the initial one: at an episode's start it is rebuilt), as tensors, numbers, strings,
lists and dicts, so `torch.load(weights_only=True)` reads it and a file that holds anything
else (an arbitrary pickled object) is refused before it can run.
"""

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from torch.utils import _pytree as pytree

from ..agents import AgentNetworks, LSTMState, Memory
from ..envs.grid import GridGame, Observation
from .episode_stats import EpisodeStats
from .rewards import RewardScheme

CHECKPOINT_FORMAT = 3  # 3: the memory may be None (the initial memory); 2 always holds it
READABLE_FORMATS = (2, 3)


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

    def memory_is_initial(self) -> bool:
        """Whether the recurrent memory equals the networks' initial memory, as it does at the
        start of every episode (all games end together and their memory is reset)."""
        initial = self.net.initial_memory(self.memory.policy.h.shape[1])
        mine, fresh = pytree.tree_leaves(tuple(self.memory)), pytree.tree_leaves(tuple(initial))
        return len(mine) == len(fresh) and all(
            a is None and b is None or isinstance(a, Tensor) and isinstance(b, Tensor) and torch.equal(a, b)
            for a, b in zip(mine, fresh))

    def checkpoint(self) -> dict:
        """The state as tensors and plain containers (what `torch.save` writes). The memory is
        None when it is the initial memory (`memory_is_initial`): `restore` rebuilds it, and
        the file is smaller by two [M, E, 128] float32 tensors per LSTM (13 MB of the 53 MB of
        5 seeds of 512 games with one LSTM)."""
        def lstm(state: LSTMState | None) -> list[Tensor] | None:
            return None if state is None else [state.h, state.c]

        memory = None if self.memory_is_initial() else {
            "policy": lstm(self.memory.policy), "moa": lstm(self.memory.moa),
            "heard": self.memory.heard, "spoken_logp": self.memory.spoken_logp}
        return {
            "format": CHECKPOINT_FORMAT,
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "env": self.env.snapshot(),
            "memory": memory,
            "reward_memory": self.reward.memory,
            "stats": self.stats.state_dict(),
            "listening_init": self.listening_init,
            "env_steps": self.env_steps,
            "wall_time": self.wall_time,
            "episodes": self.episodes,
        }

    def restore(self, data: dict) -> None:
        """Continue from `checkpoint()`'s output, exactly where it was taken."""
        if data.get("format") not in READABLE_FORMATS:
            raise ValueError(f"checkpoint format {data.get('format')!r} is not one of {READABLE_FORMATS} (this "
                             f"version writes {CHECKPOINT_FORMAT}): it was written by another version of "
                             "ssdlib; retrain the run")
        self.net.load_state_dict(data["net"])
        self.optimizer.load_state_dict(data["optimizer"])
        self.generator.set_state(data["generator"].cpu())
        self.obs = self.env.restore(data["env"])
        memory = data["memory"]
        if memory is None:
            self.memory = self.net.initial_memory(self.memory.policy.h.shape[1])
        else:
            moa = memory["moa"]
            self.memory = Memory(LSTMState(*memory["policy"]), None if moa is None else LSTMState(*moa),
                                 memory.get("heard"), memory.get("spoken_logp"))
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
