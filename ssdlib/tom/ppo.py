"""The equations of PPO (Schulman et al. 2017), one function each, as CleanRL's ppo.py uses them.

Tensors carry a leading model dimension M (one independent learner per seed and agent); every
loss is a mean over each model's own samples, returned per model ([M]), so that summing over
models gives each model the gradient of its own loss.
"""

import torch
from torch import Tensor


def gae(rewards: Tensor, values: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over one whole episode, [T, ...] -> (advantages, returns):

        δ_t = r_t + γ V(s_{t+1}) - V(s_t),   A_t = δ_t + γλ A_{t+1},   R_t = A_t + V(s_t),

    with V(s_T) = 0 and A_T = 0: the episode ends at the horizon (the value does not see the
    time, and the objective is the 25-step return, so the horizon counts as the end)."""
    advantages = torch.zeros_like(rewards)
    next_value, next_advantage = torch.zeros_like(values[0]), torch.zeros_like(values[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * next_value - values[t]
        next_advantage = advantages[t] = delta + gamma * lam * next_advantage
        next_value = values[t]
    return advantages, advantages + values


def normalise(advantages: Tensor) -> Tensor:
    """Â = (A - mean A) / (std A + 1e-8) over each model's minibatch (dim 1)."""
    return (advantages - advantages.mean(1, keepdim=True)) / (advantages.std(1, keepdim=True) + 1e-8)


def clipped_policy_loss(logratio: Tensor, advantages: Tensor, clip: float) -> Tensor:
    """L_π = -E[min(ρ Â, clip(ρ, 1-ε, 1+ε) Â)], ρ = π(a|o) / π_old(a|o) = exp(logratio)."""
    ratio = logratio.exp()
    return -torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages).mean(1)


def value_loss(values: Tensor, returns: Tensor) -> Tensor:
    """L_V = 1/2 E[(V(o) - R)²]."""
    return 0.5 * ((values - returns) ** 2).mean(1)


def entropy(logits: Tensor) -> Tensor:
    """H = E[-Σ_a π(a|o) log π(a|o)] (logits [M, B, A] -> [M])."""
    logp = logits.log_softmax(-1)
    return -(logp.exp() * logp).sum(-1).mean(1)


def approx_kl(logratio: Tensor) -> Tensor:
    """KL(π_old ‖ π) ≈ E[(ρ - 1) - log ρ] (Schulman's unbiased, non-negative estimator)."""
    return ((logratio.exp() - 1) - logratio).mean(1)


def clip_fraction(logratio: Tensor, clip: float) -> Tensor:
    """The fraction of samples whose ratio lies outside [1-ε, 1+ε] (where the clip acts)."""
    return ((logratio.exp() - 1).abs() > clip).float().mean(1)


def clip_grad_norm_per_model(parameters: list[Tensor], max_norm: float) -> Tensor:
    """Scale each model's gradient (dim 0 of every parameter) to norm at most `max_norm`, as each
    learner would on its own; returns the norms before clipping, [M]."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norms = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))
    return norms
