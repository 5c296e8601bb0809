"""A PettingZoo ParallelEnv over one game of the batched physical deception env.

Agent names, observation and action spaces are mpe2's simple_adversary_v3 parallel env's, so
code written for that env runs on this one. Training should use the batched env directly.
The grid games' adapter (`pettingzoo_env`) does not fit: its observations are images.
"""

import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

from .physical_deception import DeceptionObservation, PhysicalDeception


class PhysicalDeceptionParallelEnv(ParallelEnv):
    """One game: observations float32 [4N] (adversary_0) or [2 + 4N] (agent_i), Discrete(5)
    actions, truncation after `horizon` steps (mpe2's max_cycles, 25)."""

    metadata = {"name": "physical_deception_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(
        self,
        num_agents: int = PhysicalDeception.default_num_agents,
        seed: int = 0,
        horizon: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"unknown render_mode {render_mode!r}; this env does not render")
        self.render_mode = render_mode
        self._env = PhysicalDeception(num_envs=1, num_agents=num_agents, seed=seed, horizon=horizon)
        self.possible_agents = list(self._env.agent_names)
        self.agents: list[str] = []
        self._last = self._env.observe()
        dims = [self._last.agent(i).shape[1] for i in range(num_agents)]
        self._obs_spaces = {
            agent: spaces.Box(-np.inf, np.inf, (dim,), np.float32) for agent, dim in zip(self.possible_agents, dims)
        }
        self.state_space = spaces.Box(-np.inf, np.inf, (sum(dims),), np.float32)
        self._act_space = spaces.Discrete(self._env.num_actions)

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_space

    def _convert(self, obs: DeceptionObservation) -> dict[str, np.ndarray]:
        return {agent: obs.agent(i)[0].cpu().numpy() for i, agent in enumerate(self.possible_agents)}

    def reset(self, seed: int | None = None, options: dict | None = None):
        self._last = self._env.reset(seed=seed)
        self.agents = list(self.possible_agents)
        return self._convert(self._last), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, int]):
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"no action given for {missing}")
        a = torch.tensor([[int(actions[agent]) for agent in self.possible_agents]], device=self._env.device)
        obs, rewards, done, info = self._env.step(a)
        over = bool(done[0])
        self._last = info["final_observation"] if over else obs
        agents = self.agents
        observations = self._convert(self._last)
        reward = rewards[0].cpu().tolist()
        result = (
            {agent: observations[agent] for agent in agents},
            {agent: reward[i] for i, agent in enumerate(agents)},
            {agent: False for agent in agents},
            {agent: over for agent in agents},
            {agent: {} for agent in agents},
        )
        if over:
            self.agents = []
        return result

    def state(self) -> np.ndarray:
        """float32 [4N + N(2 + 4N)]: all observations in agent order, as mpe2's `state()`."""
        return self._last.state()[0].cpu().numpy()

    def close(self) -> None:
        pass
