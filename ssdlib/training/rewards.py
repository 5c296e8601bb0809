"""Reward schemes compared in the paper, each a function of the agents' extrinsic rewards.

All take extrinsic rewards e [..., N] (one entry per agent) and return the reward each agent
trains on, [..., N].
"""

from torch import Tensor


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
