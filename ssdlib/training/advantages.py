"""Generalised advantage estimation over a rollout, vectorised over models and games."""

import torch
from torch import Tensor


def gae(rewards: Tensor, values: Tensor, dones: Tensor, last_value: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Advantages and returns [T, ...] (Schulman et al. 2016).

    δ_t = r_t + γ V(s_{t+1}) (1 − d_t) − V(s_t);  A_t = δ_t + γ λ (1 − d_t) A_{t+1}.
    dones[t] marks that the episode ended with step t (the horizon is treated as terminal,
    as in the reference implementation). λ = 1 gives n-step (Monte Carlo to the rollout
    end) returns, the A3C estimator.
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    next_value, running = last_value, torch.zeros_like(last_value)
    for t in reversed(range(steps)):
        live = 1.0 - dones[t].float()
        delta = rewards[t] + gamma * next_value * live - values[t]
        running = delta + gamma * lam * live * running
        advantages[t] = running
        next_value = values[t]
    return advantages, advantages + values
