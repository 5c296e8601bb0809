"""Reward schemes compared in the paper, each a function of the agents' extrinsic rewards.

All take extrinsic rewards e [..., N] (one entry per agent) and return the reward each agent
trains on, [..., N].
"""

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from .conditions.config import RewardConfig


def influence_shaped_reward(extrinsic: Tensor, influence: Tensor, alpha: float, beta: float) -> Tensor:
    """Paper section 4: r^k_t = α e^k_t + β c^k_t (β already includes the curriculum)."""
    return alpha * extrinsic + beta * influence


def prosocial_reward(extrinsic: Tensor, eta: float) -> Tensor:
    """Supplement 5.2: r^k = e^k + η Σ_{i≠k} e^i."""
    return extrinsic + eta * (extrinsic.sum(-1, keepdim=True) - extrinsic)


def smooth_rewards(smoothed: Tensor, extrinsic: Tensor, gamma: float, lam: float) -> Tensor:
    """Hughes et al. 2018 temporal smoothing: ẽ^k_t = γ λ ẽ^k_{t−1} + e^k_t."""
    return gamma * lam * smoothed + extrinsic


def inequity_aversion_reward(extrinsic: Tensor, smoothed: Tensor, alpha: float, beta: float) -> Tensor:
    """Hughes et al. 2018, Eq. 3, on smoothed rewards ẽ:

    r^k = e^k − α/(N−1) Σ_{j≠k} max(ẽ^j − ẽ^k, 0) − β/(N−1) Σ_{j≠k} max(ẽ^k − ẽ^j, 0),
    α weighting disadvantageous inequity (others ahead), β advantageous (k ahead).
    """
    n = extrinsic.shape[-1]
    diff = smoothed[..., None, :] - smoothed[..., :, None]  # [..., k, j] = ẽ^j − ẽ^k
    behind = diff.clamp(min=0).sum(-1)
    ahead = (-diff).clamp(min=0).sum(-1)
    return extrinsic - (alpha * behind + beta * ahead) / max(n - 1, 1)


class RewardScheme:
    """The reward each agent trains on, [B, N], from its extrinsic reward and its influence.

    Built once from the config (`make_reward_scheme`). `memory` is what the scheme carries
    from step to step (inequity aversion's smoothed rewards; None for the others); it is part
    of the training state and starts again at each episode (`start_episode`).
    """

    memory: Tensor | None = None

    def __call__(self, extrinsic: Tensor, influence: Tensor | None, influence_scale: float) -> Tensor:
        return extrinsic

    def start_episode(self, shape: tuple[int, int], device: torch.device) -> None:
        return None


class InfluenceReward(RewardScheme):
    """r = α e + β w(t) c, taken in float64 (c is a float64 difference of tiny numbers), then
    float32 like every reward; `influence_scale` is β w(t)."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def __call__(self, extrinsic: Tensor, influence: Tensor | None, influence_scale: float) -> Tensor:
        return influence_shaped_reward(extrinsic.double(), influence, self.alpha, influence_scale).float()


class ProsocialReward(RewardScheme):
    def __init__(self, eta: float) -> None:
        self.eta = eta

    def __call__(self, extrinsic: Tensor, influence: Tensor | None, influence_scale: float) -> Tensor:
        return prosocial_reward(extrinsic, self.eta)


class InequityAversionReward(RewardScheme):
    def __init__(self, alpha: float, beta: float, gamma: float, lam: float) -> None:
        self.alpha, self.beta, self.gamma, self.lam = alpha, beta, gamma, lam

    def start_episode(self, shape: tuple[int, int], device: torch.device) -> None:
        self.memory = torch.zeros(shape, device=device)

    def __call__(self, extrinsic: Tensor, influence: Tensor | None, influence_scale: float) -> Tensor:
        self.memory = smooth_rewards(self.memory, extrinsic, self.gamma, self.lam)
        return inequity_aversion_reward(extrinsic, self.memory, self.alpha, self.beta)


def make_reward_scheme(reward: "RewardConfig", gamma: float) -> RewardScheme:
    """The scheme the config names (`reward.scheme`), with its weights."""
    schemes = {
        "extrinsic": RewardScheme,
        "influence": lambda: InfluenceReward(reward.extrinsic_weight),
        "prosocial": lambda: ProsocialReward(reward.prosocial_eta),
        "inequity_aversion": lambda: InequityAversionReward(reward.ia_alpha, reward.ia_beta, gamma, reward.ia_lambda),
    }
    return schemes[reward.scheme]()
