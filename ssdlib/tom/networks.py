"""The agents' networks: M independent copies (one per seed and agent) stepped as one batch.

Each agent is its own learner (independent PPO, as the authors' RLlib template trains one
policy per agent): its own weights, optimiser state and gradient clipping. The copies are
stacked along a leading model dimension M = seeds x agents, in that order, and every layer is
a batched matrix product, so the Python code never loops over seeds or agents.

One agent (the paper's method figure; widths from the config):

    observation ──► trunk (hidden, tanh, hidden, tanh) ─┬─► latent (N + residual_dim) ──► actor ──► π(a|o)
                                                       └─► second order (K x N) ──► B (K beliefs)
    observation ──► critic (hidden, tanh, hidden, tanh) ──► V(o)

The latent's first N units are the belief logits: with the belief bottleneck on, the actor
sees b = softmax(logits), a distribution over the N landmarks trained towards the true target,
beside the residual z (the other residual_dim units). With it off, the actor sees the same N +
residual_dim units unconstrained, so the PPO baseline has the same network without the
bottleneck's losses. The critic is a separate MLP (the figure shows none; CleanRL's choice),
so value errors, which are large for the adversary's -distance rewards, do not reshape the
beliefs. Every agent reads a 10-number observation: a good agent's own, or the adversary's 8
numbers after two zeros in place of the goal it does not see (zero inputs carry no gradient, so
the adversary's weights on them never change).
"""

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..envs.physical_deception import DeceptionObservation
from .config import ModelConfig
from .seeding import generator

OBS_DIM = 10  # a good agent's observation with N = 2 landmarks


def agent_inputs(obs: DeceptionObservation) -> Tensor:
    """[N+1, B, 10]: every agent's observation in agent order (adversary first), the
    adversary's padded with zeros where good agents see the goal."""
    adversary = F.pad(obs.adversary, (obs.good.shape[-1] - obs.adversary.shape[-1], 0))
    return torch.cat([adversary[None], obs.good.transpose(0, 1)])


class Linear(nn.Module):
    """M independent affine maps, y_m = x_m W_m + b_m, with orthogonal W_m of scale `gain`
    (CleanRL's initialisation) drawn from each model's own generator, and zero biases."""

    def __init__(self, inits: list[torch.Generator], fan_in: int, fan_out: int, gain: float) -> None:
        super().__init__()
        weights = [nn.init.orthogonal_(torch.empty(fan_out, fan_in), gain, generator=g).T for g in inits]
        self.weight = nn.Parameter(torch.stack(weights).contiguous())
        self.bias = nn.Parameter(torch.zeros(len(inits), 1, fan_out))

    def forward(self, x: Tensor) -> Tensor:
        """x [M, B, fan_in] -> [M, B, fan_out]."""
        return torch.baddbmm(self.bias, x, self.weight)


class MLP(nn.Module):
    """Two hidden layers with `activation` after each (the spec's 64-64 tanh trunk)."""

    def __init__(self, inits: list[torch.Generator], fan_in: int, hidden: int, activation: nn.Module) -> None:
        super().__init__()
        gain = math.sqrt(2)
        self.first, self.second = Linear(inits, fan_in, hidden, gain), Linear(inits, hidden, hidden, gain)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.second(self.activation(self.first(x))))


class AgentOutputs(NamedTuple):
    """Everything one forward pass gives, [M, B, ...]."""

    logits: Tensor  # [.., A] policy logits
    value: Tensor  # [..] V(o)
    belief_logits: Tensor  # [.., N] logits of the first-order belief (meaningful where the bottleneck is on)
    belief: Tensor  # [.., N] b = softmax(belief_logits)
    residual: Tensor  # [.., residual_dim] z
    second_order: Tensor  # [.., K, N] B: predicted first-order beliefs of the K other agents (softmax rows)


class ToMNetworks(nn.Module):
    """The networks of every agent of every seed: M = len(seeds) x num_agents models.

    first_order: bool per agent (agent order, adversary first): whether it acts through the
    belief bottleneck. Every agent has a second-order head, used only where its team's
    second-order flag is on (its loss and reward are masked elsewhere), so that all models
    share one shape.
    """

    def __init__(self, model: ModelConfig, seeds: list[int], first_order: list[bool],
                 num_landmarks: int, num_actions: int) -> None:
        super().__init__()
        num_agents = len(first_order)
        inits = [generator(seed, "init", agent) for seed in seeds for agent in range(num_agents)]
        n, h, z = num_landmarks, model.hidden, model.residual_dim
        self.num_landmarks, self.num_others = n, num_agents - 1
        self.trunk = MLP(inits, OBS_DIM, h, nn.Tanh())
        self.latent = Linear(inits, h, n + z, 1.0)
        self.second_order_head = Linear(inits, h, self.num_others * n, 1.0)
        self.actor_hidden = Linear(inits, n + z, h, math.sqrt(2))
        self.actor_out = Linear(inits, h, num_actions, 0.01)
        self.critic = MLP(inits, OBS_DIM, h, nn.Tanh())
        self.critic_out = Linear(inits, h, 1, 1.0)
        self.register_buffer("bottleneck", torch.tensor(first_order * len(seeds)).view(-1, 1, 1))

    def forward(self, obs: Tensor) -> AgentOutputs:
        """obs [M, B, 10] -> the outputs of every model on its own batch of observations."""
        features = self.trunk(obs)
        latent = self.latent(features)
        belief_logits, residual = latent[..., :self.num_landmarks], latent[..., self.num_landmarks:]
        belief = belief_logits.softmax(-1)
        actor_in = torch.cat([torch.where(self.bottleneck, belief, belief_logits), residual], -1)
        logits = self.actor_out(torch.tanh(self.actor_hidden(actor_in)))
        value = self.critic_out(self.critic(obs)).squeeze(-1)
        second = self.second_order_head(features).unflatten(-1, (self.num_others, self.num_landmarks)).softmax(-1)
        return AgentOutputs(logits, value, belief_logits, belief, residual, second)
