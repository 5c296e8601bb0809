"""A PettingZoo ParallelEnv over one game of the batched env (for interoperability).

Training should use the batched env directly; this adapter steps a single game and
converts to and from numpy dicts keyed by agent name.
"""

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

from . import make_env
from .geometry import VIEW_SIZE

UNBOUNDED = 2**62  # the adapter counts the horizon itself so the last observation is real


class SSDParallelEnv(ParallelEnv):
    """One game of `name`; observations are dicts of rgb [15, 15, 3], actions, visible."""

    metadata = {"name": "ssdlib_v0", "render_modes": ["rgb_array"], "is_parallelizable": True}

    def __init__(
        self,
        name: str = "cleanup",
        num_agents: int | None = None,
        seed: int = 0,
        horizon: int | None = None,
        render_mode: str | None = None,
        **options: Any,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unknown render_mode {render_mode!r}; only 'rgb_array' is supported")
        self._env = make_env(name, num_envs=1, num_agents=num_agents, seed=seed, horizon=UNBOUNDED, **options)
        self.horizon = horizon if horizon is not None else type(self._env).default_horizon
        self.render_mode = render_mode
        n, a = self._env.num_agents, self._env.num_actions
        self.possible_agents = [f"agent_{i}" for i in range(n)]
        self.agents: list[str] = []
        self._t = 0
        self._obs_space = spaces.Dict(
            {
                "rgb": spaces.Box(0, 255, (VIEW_SIZE, VIEW_SIZE, 3), np.uint8),
                "actions": spaces.MultiDiscrete(np.full(n - 1, a, dtype=np.int64)),
                "visible": spaces.MultiBinary(n - 1),
            }
        )
        self._act_space = spaces.Discrete(a)

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_space

    def _convert(self, obs) -> dict[str, dict[str, np.ndarray]]:
        rgb = obs.rgb()[0].cpu().numpy()
        actions = obs.actions[0].cpu().numpy()
        visible = obs.visible[0].cpu().numpy().astype(np.int8)
        return {
            agent: {"rgb": rgb[i], "actions": actions[i], "visible": visible[i]}
            for i, agent in enumerate(self.possible_agents)
        }

    def reset(self, seed: int | None = None, options: dict | None = None):
        obs = self._env.reset(seed=seed)
        self.agents = list(self.possible_agents)
        self._t = 0
        return self._convert(obs), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, int]):
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"no action given for {missing}")
        a = torch.tensor([[int(actions[agent]) for agent in self.possible_agents]], device=self._env.device)
        obs, rewards, _, info = self._env.step(a)
        self._t += 1
        over = self._t >= self.horizon
        observations = self._convert(obs)
        reward = rewards[0].cpu().tolist()
        events = {key: value[0].cpu().tolist() for key, value in info.items()}
        agents = self.agents
        result = (
            {agent: observations[agent] for agent in agents},
            {agent: reward[i] for i, agent in enumerate(agents)},
            {agent: False for agent in agents},
            {agent: over for agent in agents},
            {agent: {key: events[key][i] for key in events} for i, agent in enumerate(agents)},
        )
        if over:
            self.agents = []
        return result

    def render(self) -> np.ndarray | None:
        return self._env.render(0) if self.render_mode == "rgb_array" else None

    def state(self) -> np.ndarray:
        """The full map as RGB [H, W, 3]."""
        return self._env.render(0)

    def close(self) -> None:
        pass
