"""Physical deception (MPE simple_adversary) as B games stepped at once as torch tensors.

The rules are those of `mpe2.simple_adversary_v3` with its defaults (N=2, max_cycles=25,
continuous_actions=False, full observability), read from mpe2 1.1.1's source
(`simple_adversary/simple_adversary.py`, `_mpe_utils/core.py`, `_mpe_utils/simple_env.py`):

- agents in mpe2's order [adversary_0, agent_0 .. agent_{N-1}]: index 0 is the adversary;
  N landmarks, one of them the target, which only the good agents observe;
- Discrete(5) actions; a step integrates positions with the old velocities, then damps the
  velocities and adds the action's force; rewards are the shaped distance rewards;
- no contact forces: every agent and landmark has `collide=False`, so mpe2 adds none;
  no speed cap (`max_speed=None`), no motor noise (`u_noise=None`), agents are silent.

The state (`ParticleState`) is float64, as mpe2's numpy state is, and every operation is the
one mpe2 performs in the same order, so positions, velocities and the float32 observations
equal mpe2's bit for bit. Rewards agree to 1e-14 before their float32 cast (one float32 ulp
after it): torch's float64 sqrt on CPU (MKL's) is not always correctly rounded, numpy's is.
A step is a fixed sequence of tensor ops: no Python loop over games.
All games share the step counter, so they reach the horizon together and reset themselves.
"""

from dataclasses import dataclass, fields
from typing import NamedTuple

import torch

from .actions import check_actions

ACTION_NAMES = ("no_action", "move_left", "move_right", "move_down", "move_up")
# unit direction of each action's force (simple_env.SimpleEnv._set_action, discrete branch)
DIRECTIONS = ((0.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0))
SENSITIVITY = 5.0  # force per unit direction when `agent.accel` is None (SimpleEnv._set_action)
DT = 0.1  # World.dt
DAMPING = 0.25  # World.damping
MASS = 1.0  # Entity.initial_mass (the agents' density is unused)
HORIZON = 25  # max_cycles of simple_adversary_v3.env
SPAWN_LOW, SPAWN_HIGH = -1.0, 1.0  # Scenario.reset_world: positions ~ U(-1, 1) per coordinate


@dataclass
class ParticleState:
    """Everything that changes during an episode, for B games of N+1 agents and N landmarks.

    pos, vel: float64 [B, N+1, 2] agents' positions and velocities (adversary first);
    landmarks: float64 [B, N, 2] landmark positions (landmarks never move);
    goal: int64 [B] index of the target landmark (the ground truth of a belief "which landmark").
    """

    pos: torch.Tensor
    vel: torch.Tensor
    landmarks: torch.Tensor
    goal: torch.Tensor

    def tensors(self) -> list[torch.Tensor]:
        return [getattr(self, f.name) for f in fields(self)]

    def goal_pos(self) -> torch.Tensor:
        """float64 [B, 2]: the target landmark's position."""
        return self.landmarks.gather(1, self.goal[:, None, None].expand(-1, 1, 2)).squeeze(1)


class DeceptionObservation(NamedTuple):
    """Per-agent observations of B games, float32 like mpe2's, in mpe2's layout.

    adversary: [B, 4N] = [landmark_k - self for k < N, other - self for agent_0 .. agent_{N-1}].
    good: [B, N, 2 + 4N]; row i is agent_i's [goal - self, landmark_k - self for k < N,
    other - self for the other agents in mpe2's order (adversary_0 first, then agent_j, j != i)].
    """

    adversary: torch.Tensor
    good: torch.Tensor

    def agent(self, index: int) -> torch.Tensor:
        """[B, dim] observation of agent `index` in mpe2's order (0 = adversary_0)."""
        return self.adversary if index == 0 else self.good[:, index - 1]

    def state(self) -> torch.Tensor:
        """[B, 4N + N(2 + 4N)]: every agent's observation concatenated in agent order, as
        mpe2's `state()` (a centralised critic's input)."""
        return torch.cat([self.adversary, self.good.flatten(1)], dim=1)


def agent_names(num_good: int) -> list[str]:
    """mpe2's agent names: adversary_0, agent_0 .. agent_{N-1}."""
    return ["adversary_0"] + [f"agent_{i}" for i in range(num_good)]


def integrate(pos: torch.Tensor, vel: torch.Tensor, force: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World.integrate_state for the agents (landmarks are not movable): x <- x + v dt with the
    old v, then v <- (1 - damping) v + (F / m) dt."""
    pos = pos + vel * DT
    vel = vel * (1 - DAMPING)
    vel = vel + (force / MASS) * DT
    return pos, vel


def distances_to_goal(state: ParticleState) -> torch.Tensor:
    """float64 [B, N+1]: each agent's Euclidean distance to the target, computed as mpe2 does
    (sqrt of the sum of squared differences)."""
    delta = state.pos - state.goal_pos()[:, None, :]
    return (delta * delta).sum(-1).sqrt()


def shaped_rewards(state: ParticleState) -> torch.Tensor:
    """float64 [B, N+1]: Scenario.adversary_reward and agent_reward with their hard-coded
    shaped (distance) rewards. The adversary gets -d(adversary); every good agent gets
    d(adversary) - min over good agents of d(good)."""
    d = distances_to_goal(state)
    good = d[:, :1] - d[:, 1:].amin(1, keepdim=True)
    return torch.cat([-d[:, :1], good.expand(-1, d.shape[1] - 1)], dim=1)


class PhysicalDeception:
    """B games of physical deception with N+1 agents (1 adversary, N good) and N landmarks."""

    name: str = "physical_deception"
    num_actions: int = len(ACTION_NAMES)
    default_horizon: int = HORIZON
    default_num_agents: int = 3  # simple_adversary_v3's default N=2 good agents, plus the adversary
    action_names: tuple[str, ...] = ACTION_NAMES

    def __init__(
        self,
        num_envs: int,
        num_agents: int = default_num_agents,
        device: str | torch.device = "cpu",
        seed: int = 0,
        horizon: int | None = None,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        if isinstance(num_agents, bool) or not isinstance(num_agents, int) or num_agents < 2:
            raise ValueError(f"num_agents must be an int >= 2 (1 adversary + N good agents), got {num_agents!r}")
        horizon = self.default_horizon if horizon is None else horizon
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive int, got {horizon!r}")
        self.num_envs, self.num_agents, self.horizon = num_envs, num_agents, horizon
        self.num_good = self.num_landmarks = num_agents - 1
        self.agent_names = agent_names(self.num_good)
        self.device = torch.device(device)
        n = num_agents
        # [5, 2] the force of each action: its direction times the sensitivity, as mpe2 scales u
        self._force = (SENSITIVITY * torch.tensor(DIRECTIONS, dtype=torch.float64)).to(self.device)
        eye = torch.eye(n, dtype=torch.bool)
        self._others = torch.arange(n).expand(n, -1)[~eye].view(n, n - 1).to(self.device)
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(seed)
        self.t = 0
        self.state = self._initial_state()

    def _uniform_positions(self, *shape: int) -> torch.Tensor:
        """float64 positions ~ U(-1, 1), drawn as numpy's uniform does: low + (high - low) u."""
        u = torch.rand(*shape, 2, generator=self._generator, device=self.device, dtype=torch.float64)
        return SPAWN_LOW + (SPAWN_HIGH - SPAWN_LOW) * u

    def _initial_state(self) -> ParticleState:
        """Scenario.reset_world: a uniform target landmark, agents and landmarks uniform in
        [-1, 1)^2 independently, agents at rest."""
        b, n = self.num_envs, self.num_agents
        goal = torch.randint(0, self.num_landmarks, (b,), generator=self._generator, device=self.device)
        pos = self._uniform_positions(b, n)
        landmarks = self._uniform_positions(b, self.num_landmarks)
        return ParticleState(pos=pos, vel=torch.zeros_like(pos), landmarks=landmarks, goal=goal)

    def reset(self, seed: int | None = None) -> DeceptionObservation:
        """Start new episodes in all games (reseeding first if `seed` is given)."""
        if seed is not None:
            self._generator.manual_seed(seed)
        self.t = 0
        self.state = self._initial_state()
        return self.observe()

    def step(self, actions: torch.Tensor) -> tuple[DeceptionObservation, torch.Tensor, torch.Tensor, dict]:
        """Advance every game by one step (SimpleEnv._execute_world_step, then the truncation).

        actions: integer tensor [B, N+1] (0 no_action, 1 left, 2 right, 3 down, 4 up) on the
        env's device. Returns (obs, rewards float32 [B, N+1], done bool [B], info). `done` is
        mpe2's truncation after `horizon` steps (the game has no termination). Games that reach
        the horizon are reset and `obs` is then the first observation of the next episode;
        info["final_observation"] holds the observation the episode ended on (only then).
        """
        a = check_actions(actions, self.num_envs, self.num_agents, self.num_actions, self.device, self.name)
        s = self.state
        s.pos, s.vel = integrate(s.pos, s.vel, self._force[a])
        rewards = shaped_rewards(s).float()
        self.t += 1
        episode_over = self.t >= self.horizon
        done = torch.full((self.num_envs,), episode_over, dtype=torch.bool, device=self.device)
        info = {}
        if episode_over:
            info["final_observation"] = self.observe()
            self.t = 0
            self.state = self._initial_state()
        return self.observe(), rewards, done, info

    def observe(self) -> DeceptionObservation:
        """Scenario.observation of every agent, from float64 differences cast to float32 as
        SimpleEnv.observe does."""
        s = self.state
        me = s.pos[:, :, None, :]
        landmarks = (s.landmarks[:, None] - me).flatten(2)  # [B, N+1, 2N]
        others = (s.pos[:, self._others] - me).flatten(2)  # [B, N+1, 2N]
        goal = s.goal_pos()[:, None] - s.pos  # [B, N+1, 2]
        adversary = torch.cat([landmarks[:, 0], others[:, 0]], dim=1)
        good = torch.cat([goal[:, 1:], landmarks[:, 1:], others[:, 1:]], dim=2)
        return DeceptionObservation(adversary.float(), good.float())

    def state_bytes_per_game(self) -> int:
        """Bytes of episode state per game (the tensors of `ParticleState`)."""
        return sum(t.numel() * t.element_size() for t in self.state.tensors()) // self.num_envs
