"""Loss terms, each one function, each returned by name for logging.

Every term is per step and game ([T, M, E']); `actor_critic_loss` averages over steps and
games per model and sums over models, so each agent's gradient is its own. The terms it
logs are per model ([M], detached): policy, value, entropy, and for PPO the approximate KL
and the clip fraction.
"""

import torch
from torch import Tensor
from torch.nn import functional as F


def policy_gradient_loss(logp: Tensor, advantages: Tensor) -> Tensor:
    """A2C: L = −log π(a_t | s_t) · Â_t."""
    return -logp * advantages


def ppo_clipped_loss(logp: Tensor, old_logp: Tensor, advantages: Tensor, clip: float) -> Tensor:
    """PPO: L = −min(ρ Â, clip(ρ, 1 − ε, 1 + ε) Â), ρ = π(a|s) / π_old(a|s)."""
    ratio = (logp - old_logp).exp()
    return -torch.minimum(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)


def value_loss(returns: Tensor, values: Tensor) -> Tensor:
    """½ (R_t − V(s_t))²."""
    return 0.5 * (returns - values) ** 2


def entropy(logp_all: Tensor) -> Tensor:
    """H[π(· | s_t)] = −Σ_a π(a) log π(a)."""
    return -(logp_all.exp() * logp_all).sum(-1)


def approx_kl(logp: Tensor, old_logp: Tensor) -> Tensor:
    """KL[π_old ‖ π] estimated from the taken actions: E[(ρ − 1) − log ρ] (Schulman's k3)."""
    log_ratio = logp - old_logp
    return (log_ratio.exp() - 1) - log_ratio


def actor_critic_loss(logits: Tensor, values: Tensor, actions: Tensor, old_logp: Tensor, advantages: Tensor,
                      returns: Tensor, algorithm: str, value_coef: float, entropy_coef: float,
                      clip: float) -> tuple[Tensor, dict[str, Tensor]]:
    """L = L_policy + c_v L_value − c_H H, averaged over steps and games per model, summed
    over models; and each term per model by name."""
    logp_all = F.log_softmax(logits, -1)
    logp = logp_all.gather(-1, actions[..., None]).squeeze(-1)
    h = entropy(logp_all)
    if algorithm == "ppo":
        policy = ppo_clipped_loss(logp, old_logp, advantages, clip)
    else:
        policy = policy_gradient_loss(logp, advantages)
    value = value_loss(returns, values)
    total = (policy + value_coef * value - entropy_coef * h).mean(dim=(0, 2)).sum()
    with torch.no_grad():
        terms = {"policy": policy.mean((0, 2)), "value": value.mean((0, 2)), "entropy": h.mean((0, 2))}
        if algorithm == "ppo":
            terms["approx_kl"] = approx_kl(logp, old_logp).mean((0, 2))
            terms["clip_fraction"] = ((logp - old_logp).exp().sub(1).abs() > clip).float().mean((0, 2))
    return total, terms


def moa_loss(logits: Tensor, targets: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """The MOA's cross-entropy on the others' true next actions, −log p̂(a^j_{t+1}), averaged
    per model over the (step, game, other) entries that `mask` keeps, summed over models; and
    per model the loss and the accuracy of the most likely prediction.

    logits [T, M, E, N-1, A]; targets int [T, M, E, N-1]; mask bool [T, M, E, N-1].
    """
    ce = F.cross_entropy(logits.flatten(0, -2), targets.flatten(), reduction="none").view(targets.shape)
    weight = mask.float()
    count = weight.sum((0, 2, 3)).clamp(min=1.0)
    per_model = (ce * weight).sum((0, 2, 3)) / count
    with torch.no_grad():
        correct = (logits.argmax(-1) == targets).float()
        terms = {"moa": per_model.detach(), "moa_accuracy": (correct * weight).sum((0, 2, 3)) / count}
    return per_model.sum(), terms
