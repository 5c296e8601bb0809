"""Causal social influence: divergences, counterfactual marginals and influence rewards.

Convention: every distribution is given as **log-probabilities over the last dimension**
(e.g. the output of ``torch.log_softmax``). Log-probabilities keep tiny probabilities exact,
let the counterfactual marginal be a ``logsumexp``, and make PMI a plain difference. Any
leading dimensions are batch dimensions and broadcast.

References: Jaques et al. 2019, section 4 (Eq. 1/3 of the main text) and supplementary
section 1 (influence as mutual information, PMI).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "DIVERGENCES",
    "basic_influence_reward",
    "causal_influence_reward",
    "counterfactual_marginal",
    "curriculum_weight",
    "divergence",
    "js_divergence",
    "js_from_log_ratio",
    "kl_divergence",
    "kl_from_log_ratio",
    "marginal_log_ratio",
    "mutual_information",
    "mutual_information_from_joint",
    "pointwise_mutual_information",
    "reference_curriculum_weight",
]

_LOG2 = math.log(2.0)


def kl_from_log_ratio(p_log: Tensor, log_ratio: Tensor) -> Tensor:
    """D_KL[p || q] = −Σ_a p(a) log(q(a)/p(a)), from log p and the log-ratio log q − log p.

    Given the ratio directly, a q that equals p exactly gives exactly 0 (a difference of two
    separately rounded log-probabilities need not). Terms with p(a) = 0 contribute 0.
    """
    p = p_log.exp()
    return torch.where(p > 0, -p * log_ratio, torch.zeros_like(p_log)).sum(-1)


def kl_divergence(p_log: Tensor, q_log: Tensor) -> Tensor:
    """KL divergence over the last dim: D_KL[p || q] = Σ_a p(a) (log p(a) − log q(a)).

    Terms with p(a) = 0 contribute 0 (the 0·log 0 = 0 convention), so distributions with
    restricted support are handled exactly; p(a) > 0 = q(a) gives +inf.
    """
    return kl_from_log_ratio(p_log, q_log - p_log)


def js_from_log_ratio(p_log: Tensor, q_log: Tensor, log_ratio: Tensor) -> Tensor:
    """JSD[p, q] = ½ Σ_a p(a) log(p(a)/m(a)) + ½ Σ_a q(a) log(q(a)/m(a)), m = ½ (p + q),
    with log(p/m) = −log1p(expm1(r)/2) and log(q/m) = r + log(p/m) from r = log q − log p.

    Through the ratio, q = p gives exactly 0 and a tiny r keeps its digits (expm1, log1p).
    Bounded by log 2 (disjoint supports); clamped to [0, log 2] against rounding.
    """
    p, q = p_log.exp(), q_log.exp()
    p_over_m = -torch.log1p(torch.expm1(log_ratio) / 2)
    q_over_m = torch.where(p > 0, log_ratio + p_over_m, torch.full_like(p_log, _LOG2))  # p = 0: m = q/2
    zero = torch.zeros_like(p_log)
    terms = torch.where(p > 0, p * p_over_m, zero) + torch.where(q > 0, q * q_over_m, zero)
    return (0.5 * terms.sum(-1)).clamp(0.0, _LOG2)


def js_divergence(p_log: Tensor, q_log: Tensor) -> Tensor:
    """Jensen–Shannon divergence: JSD[p, q] = ½ KL[p || m] + ½ KL[q || m], m = ½ (p + q).

    Symmetric, finite and bounded by log 2 (reached for disjoint supports); the result is
    clamped to [0, log 2] so float rounding cannot leave that range.
    """
    return js_from_log_ratio(p_log, q_log, q_log - p_log)


def pointwise_mutual_information(cond_log: Tensor, marg_log: Tensor, action: Tensor) -> Tensor:
    """PMI at the influencee's taken action (supplement Eq. 4).

    pmi(a^k; a^j | z) = log p(a^j | a^k, z) − log p(a^j | z), evaluated at a^j = ``action``
    (integer tensor with the leading shape of ``cond_log``). Unlike KL/JSD it can be negative;
    its expectation under p(a^j, a^k | z) is the mutual information.
    """
    index = torch.as_tensor(action, dtype=torch.long, device=cond_log.device).unsqueeze(-1)
    shape = torch.broadcast_shapes(cond_log.shape, marg_log.shape)
    index = index.expand(*shape[:-1], 1)
    cond = cond_log.expand(shape).gather(-1, index).squeeze(-1)
    marg = marg_log.expand(shape).gather(-1, index).squeeze(-1)
    return cond - marg


DIVERGENCES: dict[str, Callable[..., Tensor]] = {
    "kl": kl_divergence,
    "jsd": js_divergence,
    "pmi": pointwise_mutual_information,
}


def divergence(name: str, p_log: Tensor, q_log: Tensor, action: Tensor | None = None) -> Tensor:
    """Dispatch D[p || q] by name ("kl", "jsd" or "pmi"), as the paper's tables select it.

    ``action`` (the influencee's taken action) is required for "pmi" and unused otherwise.
    """
    if name not in DIVERGENCES:
        raise ValueError(f"unknown divergence {name!r}; expected one of {sorted(DIVERGENCES)}")
    if name == "pmi":
        if action is None:
            raise ValueError("divergence 'pmi' needs the influencee's taken action")
        return pointwise_mutual_information(p_log, q_log, action)
    return DIVERGENCES[name](p_log, q_log)


def counterfactual_marginal(cond_log_all: Tensor, influencer_log: Tensor) -> Tensor:
    """Influencee's policy with the influencer's action marginalised out.

    log p(a^j | z) = log Σ_ã p(a^j | ã, z) p(ã | s^k), computed with ``logsumexp``.
    ``cond_log_all``: [..., A_k, A_j], row ã = log p(a^j | a^k = ã, z);
    ``influencer_log``: [..., A_k] = log p(a^k | s^k). Returns [..., A_j].
    """
    return torch.logsumexp(cond_log_all + influencer_log.unsqueeze(-1), dim=-2)


def _row_at(cond_log_all: Tensor, action: Tensor) -> Tensor:
    """Row ``action`` of [..., A_k, A_j] along dim -2: the conditional at the taken action."""
    index = torch.as_tensor(action, dtype=torch.long, device=cond_log_all.device)
    index = index[..., None, None].expand(*cond_log_all.shape[:-2], 1, cond_log_all.shape[-1])
    return cond_log_all.gather(-2, index).squeeze(-2)


def marginal_log_ratio(cond_log_all: Tensor, influencer_log: Tensor, cond_log: Tensor) -> Tensor:
    """log p(a^j | z) − log p(a^j | a^k, z): how the counterfactual marginal differs from the
    conditional, computed relative to the conditional so that it is exactly 0 when every
    counterfactual row equals it (an influencee that ignores the influencer):

    r = log(1 + Σ_ã p(ã | s^k) (exp(log p(a^j | ã, z) − log p(a^j | a^k, z)) − 1)),

    which is log Σ_ã p(ã | s^k) p(a^j | ã, z) / p(a^j | a^k, z) since Σ_ã p(ã | s^k) = 1.
    Rows equal to the conditional add expm1(0) = 0 exactly, and a small difference keeps its
    digits (expm1, log1p). ``cond_log_all`` [..., A_k, A_j], ``influencer_log`` [..., A_k]
    (normalised), ``cond_log`` [..., A_j].
    """
    change = torch.expm1(cond_log_all - cond_log.unsqueeze(-2))  # [..., A_k, A_j]
    return torch.log1p((influencer_log.exp().unsqueeze(-1) * change).sum(-2))


def _influence(cond_log_all: Tensor, influencer_log: Tensor, cond: Tensor, divergence: str,
               influencee_action: Tensor | None) -> Tensor:
    """D[cond || marginal] by name, through `marginal_log_ratio` (exact 0 for no influence)."""
    if divergence not in DIVERGENCES:
        raise ValueError(f"unknown divergence {divergence!r}; expected one of {sorted(DIVERGENCES)}")
    ratio = marginal_log_ratio(cond_log_all, influencer_log, cond)
    if divergence == "kl":
        return kl_from_log_ratio(cond, ratio)
    if divergence == "jsd":
        return js_from_log_ratio(cond, cond + ratio, ratio)
    if influencee_action is None:
        raise ValueError("divergence 'pmi' needs the influencee's taken action")
    index = torch.as_tensor(influencee_action, dtype=torch.long, device=ratio.device).unsqueeze(-1)
    return -ratio.gather(-1, index.expand(*ratio.shape[:-1], 1)).squeeze(-1)


def causal_influence_reward(
    cond_log_all: Tensor,
    influencer_log: Tensor,
    influencer_action: Tensor,
    divergence: str = "kl",
    influencee_action: Tensor | None = None,
) -> Tensor:
    """Causal influence of agent k on agent j (paper Eq. 1/3, one pair).

    c = D[ p(a^j | a^k_t, z) || Σ_ã p(a^j | ã, z) p(ã | s^k) ], z = ⟨s^j, u^j⟩.
    ``cond_log_all`` [..., A_k, A_j] holds the influencee's counterfactual log-policies,
    ``influencer_log`` [..., A_k] the influencer's log-policy, ``influencer_action`` [...] the
    action a^k_t actually taken (selects the conditional row), ``influencee_action`` [...] the
    influencee's taken action (needed for "pmi"). Returns [...]; exactly 0 when the
    influencee's policy does not depend on the influencer's action.
    """
    cond = _row_at(cond_log_all, influencer_action)
    shape = torch.broadcast_shapes(cond_log_all.shape[:-1], influencer_log.shape)
    influencer_log = influencer_log.expand(shape)
    return _influence(cond_log_all.expand(*shape, cond_log_all.shape[-1]), influencer_log, cond,
                      divergence, influencee_action)


def basic_influence_reward(
    cond_log_all: Tensor,
    influencer_log: Tensor,
    influencer_actions: Tensor,
    influencer_mask: Tensor,
    influencee_mask: Tensor,
    divergence: str = "kl",
    influencee_actions: Tensor | None = None,
) -> Tensor:
    """Centralised (basic) influence reward for N agents (paper section 4).

    c^k = Σ_{j ≠ k, j influencee} D[ p(a^j | a^k_t, s^j, u^j)
                                    || Σ_ã p(a^j | ã, s^j, u^j) p(ã | s^k) ]
    for every influencer k, and c^k = 0 for agents that are not influencers.

    Dense agent-by-agent layout (N agents, A actions each):
      * ``cond_log_all`` [..., N, N, A, A]: entry [..., k, j, ã, a] = log p(a^j = a | a^k = ã,
        s^j, u^j), influencee j's policy with influencer k's action replaced by ã and every
        other input (including the other influencers' actual actions) kept. Only entries with k
        an influencer and j an influencee are read; the rest may hold anything (e.g. zeros).
      * ``influencer_log`` [..., N, A]: log p(a^k | s^k) of each agent (rows of
        non-influencers are ignored).
      * ``influencer_actions`` [..., N]: every agent's taken action (valid indices; entries of
        non-influencers are ignored).
      * ``influencer_mask``, ``influencee_mask``: bool, broadcastable to [..., N]; they must be
        disjoint (so j ≠ k holds automatically).
      * ``influencee_actions`` [..., N]: every agent's taken action, needed for "pmi".
    Returns the per-agent influence reward, shape [..., N].
    """
    influencer_mask = torch.as_tensor(influencer_mask, dtype=torch.bool, device=cond_log_all.device)
    influencee_mask = torch.as_tensor(influencee_mask, dtype=torch.bool, device=cond_log_all.device)
    if bool((influencer_mask & influencee_mask).any()):
        raise ValueError("influencer_mask and influencee_mask must be disjoint")
    actions = torch.as_tensor(influencer_actions, dtype=torch.long, device=cond_log_all.device)
    cond = _row_at(cond_log_all, actions.unsqueeze(-1).expand(cond_log_all.shape[:-2]))
    taken = None
    if influencee_actions is not None:
        taken = torch.as_tensor(influencee_actions, dtype=torch.long, device=cond_log_all.device)
        taken = taken.unsqueeze(-2).expand(cond_log_all.shape[:-2])
    influencer_log = influencer_log.unsqueeze(-2).expand(cond_log_all.shape[:-1])
    pair_value = _influence(cond_log_all, influencer_log, cond, divergence, taken)
    pairs = influencer_mask.unsqueeze(-1) & influencee_mask.unsqueeze(-2)
    return torch.where(pairs, pair_value, torch.zeros_like(pair_value)).sum(-1)


def curriculum_weight(step: float, C: float) -> float:
    """Influence-reward weight, linearly increased from 0 to 1 over the first C env steps.

    w(t) = min(max(t / C, 0), 1) (paper supplement section 4.1; the tables give C in units of
    10^6 steps, so pass e.g. 140e6). C = 0 disables the curriculum (weight 1 from step 0).
    """
    if C < 0:
        raise ValueError(f"curriculum length C must be >= 0, got {C}")
    if C == 0:
        return 1.0 if step >= 0 else 0.0
    return float(min(max(step / C, 0.0), 1.0))


def reference_curriculum_weight(step: float) -> float:
    """Influence-reward schedule of the public reference code (PPO implementation).

    0 until 1e7 env steps, linear to 1 at 1e8, linear down to 0.5 at 3e8, then 0.5.
    """
    if step <= 1e7:
        return 0.0
    if step <= 1e8:
        return float((step - 1e7) / 9e7)
    if step <= 3e8:
        return float(1.0 - 0.5 * (step - 1e8) / 2e8)
    return 0.5


def mutual_information(cond_log_all: Tensor, influencer_log: Tensor) -> Tensor:
    """MI between the agents' actions as the expected causal influence (supplement Eq. 2).

    I(A^j; A^k | z) = Σ_{a^k} p(a^k | z) D_KL[ p(a^j | a^k, z) || p(a^j | z) ].
    ``cond_log_all`` [..., A_k, A_j], ``influencer_log`` [..., A_k]; returns [...].
    """
    marg = counterfactual_marginal(cond_log_all, influencer_log)
    kl = kl_divergence(cond_log_all, marg.unsqueeze(-2))
    p = influencer_log.exp()
    return torch.where(p > 0, p * kl, torch.zeros_like(kl)).sum(-1)


def mutual_information_from_joint(joint_log: Tensor) -> Tensor:
    """MI computed directly from a joint log-distribution [..., A_k, A_j] (supplement Eq. 2).

    I(A^j; A^k | z) = Σ_{a^k, a^j} p(a^j, a^k | z)
                      · log[ p(a^j, a^k | z) / (p(a^j | z) p(a^k | z)) ].
    """
    log_k = torch.logsumexp(joint_log, dim=-1, keepdim=True)
    log_j = torch.logsumexp(joint_log, dim=-2, keepdim=True)
    p = joint_log.exp()
    ratio = torch.where(p > 0, joint_log - log_k - log_j, torch.zeros_like(joint_log))
    return (p * ratio).sum((-2, -1))
