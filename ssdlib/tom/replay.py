"""Trained agents played back: positions, beliefs and rewards of fresh episodes, for pictures and
diagnostics.

A replay loads a run folder's networks (config.json and checkpoint.pt) and plays `num_games`
new games per seed, sampling actions from the trained policies as in training, with the seed's
"replay" streams: every run of the same seeds starts from the same positions, so the rows of
the table can be compared episode by episode.
"""

import json
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from ..envs.physical_deception import HORIZON, PhysicalDeception
from .config import config_from_dict
from .networks import ToMNetworks, agent_inputs
from .seeding import stream_seed
from .train import NUM_AGENTS, agent_flags, load_checkpoint, sample_actions


class Replay(NamedTuple):
    """Episodes of S seeds x E games (agents in order adversary, agent_0, agent_1)."""

    positions: Tensor  # float64 [S, T+1, E, A, 2] at the reset and after each step
    landmarks: Tensor  # float64 [S, E, N, 2]
    goal: Tensor  # int64 [S, E] the target landmark
    belief: Tensor  # [S, T, E, A, N] first-order beliefs when acting (meaningful where the bottleneck is on)
    rewards: Tensor  # [S, T, E, A] extrinsic rewards
    bottleneck: list[bool]  # per agent: whether it has a belief bottleneck


def load_agents(folder: str | Path, device: str | torch.device = "cpu") -> tuple[ToMNetworks, list[int]]:
    """The trained networks of a run folder and its seeds."""
    folder = Path(folder)
    stored = json.loads((folder / "config.json").read_text())
    config, seeds = config_from_dict(stored["config"]), list(stored["seeds"])
    net = ToMNetworks(config.model, seeds, agent_flags(config, "first_order"), num_landmarks=NUM_AGENTS - 1,
                      num_actions=PhysicalDeception.num_actions).to(device)
    net.load_state_dict(load_checkpoint(folder / "checkpoint.pt", device)["net"])
    return net, seeds


@torch.no_grad()
def play(net: ToMNetworks | None, seeds: list[int], num_games: int, device: str | torch.device = "cpu") -> Replay:
    """One episode in each of `num_games` games per seed; `net` None plays uniformly random
    actions (a reference). The games run one step past the horizon so that they do not reset
    before the last positions are read."""
    games = [PhysicalDeception(num_games, NUM_AGENTS, device=device, seed=stream_seed(s, "replay"),
                               horizon=HORIZON + 1) for s in seeds]
    sampling = [torch.Generator(device=device).manual_seed(stream_seed(s, "replay", 1)) for s in seeds]
    positions, beliefs, rewards = [torch.stack([g.state.pos for g in games])], [], []
    landmarks, goal = torch.stack([g.state.landmarks for g in games]), torch.stack([g.state.goal for g in games])
    for _ in range(HORIZON):
        obs = torch.cat([agent_inputs(g.observe()) for g in games])  # [M, E, 10]
        uniform = torch.cat([torch.rand(NUM_AGENTS, num_games, generator=gen, device=device) for gen in sampling])
        if net is None:
            logits = torch.zeros(*uniform.shape, PhysicalDeception.num_actions, device=device)
            belief = torch.full((*uniform.shape, NUM_AGENTS - 1), 1.0 / (NUM_AGENTS - 1), device=device)
        else:
            out = net(obs)
            logits, belief = out.logits, out.belief
        actions = sample_actions(logits, uniform).unflatten(0, (len(seeds), NUM_AGENTS))
        steps = [g.step(a.T) for g, a in zip(games, actions)]
        positions.append(torch.stack([g.state.pos for g in games]))
        beliefs.append(belief.unflatten(0, (len(seeds), NUM_AGENTS)).transpose(1, 2))
        rewards.append(torch.stack([r for _, r, _, _ in steps]))
    bottleneck = [False] * NUM_AGENTS if net is None else [bool(x) for x in net.bottleneck[:NUM_AGENTS].flatten()]
    return Replay(torch.stack(positions, 1), landmarks, goal, torch.stack(beliefs, 1), torch.stack(rewards, 1), bottleneck)


def replay_run(folder: str | Path, num_games: int, device: str | torch.device = "cpu") -> Replay:
    """`play` with the trained agents of a run folder, on its seeds."""
    net, seeds = load_agents(folder, device)
    return play(net, seeds, num_games, device)
