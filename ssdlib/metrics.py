"""Outcome metrics of the paper (collective reward, Gini/equality) and its error bars.

The metrics run on logged data, so they use numpy and accept any array-like (lists, numpy
arrays, torch tensors). The last dimension of ``returns`` indexes agents; leading dimensions are
batch dimensions (seeds, time, ...).

References: Jaques et al. 2019, supplement section 5.4 (Eq. 6, Gini; R·(1−G)), Table 4 (final
collective reward), figure captions (99.5% CI over seeds within a sliding window of 200 agent
steps), and Hughes et al. 2018 (Harvest seeds where an agent never collects apples removed).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ConfidenceBand",
    "collective_reward",
    "collective_times_equality",
    "equality",
    "final_collective_reward",
    "gini",
    "harvest_learned_filter",
    "sliding_window_ci",
    "student_t_ppf",
]


def _as_array(x: ArrayLike | Any) -> NDArray[np.float64]:
    """Float64 copy of an array-like; torch tensors are detached and moved to the CPU first."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _agent_returns(returns: ArrayLike) -> NDArray[np.float64]:
    e = _as_array(returns)
    if e.ndim < 1 or e.shape[-1] < 1:
        raise ValueError(
            f"returns must have a non-empty last (agent) dimension, got shape {e.shape}"
        )
    return e


def collective_reward(returns: ArrayLike) -> NDArray[np.float64]:
    """Collective reward R = Σ_i e^i, summed over the last (agent) dimension."""
    return _agent_returns(returns).sum(-1)


def gini(returns: ArrayLike) -> NDArray[np.float64]:
    """Gini coefficient of the agents' returns (supplement Eq. 6), over the last dimension.

    G = Σ_i Σ_j |e_i − e_j| / (2 N Σ_i e_i).

    Eq. 6 lies in [0, (N−1)/N] ⊂ [0, 1] only for non-negative returns, but SSD returns can be
    negative (the fining beam costs −1 to fire and −50 to the agent hit). Definition used here:
    when the smallest return is negative, all returns are shifted up by −min(e) before Eq. 6, so
    the worst-off agent counts as having nothing. This leaves Eq. 6 untouched on its own domain
    (min e ≥ 0), is continuous where min e crosses 0, keeps scale invariance and the [0, 1]
    bound, and so covers every Σ e ≤ 0 case. When the (shifted) total is 0 every return is
    equal, and G = 0 (perfect equality).
    """
    e = _agent_returns(returns)
    e = e - np.minimum(e.min(-1, keepdims=True), 0.0)
    total = e.sum(-1)
    spread = np.abs(e[..., :, None] - e[..., None, :]).sum((-2, -1))
    n = e.shape[-1]
    safe_total = np.where(total > 0, total, 1.0)
    return np.where(total > 0, spread / (2.0 * n * safe_total), 0.0)


def equality(returns: ArrayLike) -> NDArray[np.float64]:
    """Equality index 1 − G (supplement section 5.4), 1 for perfectly equal returns."""
    return 1.0 - gini(returns)


def collective_times_equality(returns: ArrayLike) -> NDArray[np.float64]:
    """R · (1 − G), the equality-weighted collective reward of supplement Figure 8."""
    return collective_reward(returns) * equality(returns)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            delta = d * c
            h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _t_upper_tail(t: float, df: float) -> float:
    """P(T > t) for t ≥ 0 under Student's t: ½ I_{df/(df+t²)}(df/2, 1/2)."""
    return 0.5 * _betainc(0.5 * df, 0.5, df / (df + t * t))


def student_t_ppf(p: float, df: float) -> float:
    """Quantile t_{p, df} of Student's t distribution (exact up to ~1e-12, no scipy).

    Solves P(T > t) = 1 − p by bisection on the upper tail, written with the regularized
    incomplete beta function; the tail form keeps precision for p close to 1.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if not df > 0:
        raise ValueError(f"df must be > 0, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -student_t_ppf(1.0 - p, df)
    tail = 1.0 - p
    lo, hi = 0.0, 1.0
    while _t_upper_tail(hi, df) > tail:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_upper_tail(mid, df) > tail:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


class ConfidenceBand(NamedTuple):
    """Mean and two-sided confidence bounds per time point, each of shape [T]."""

    mean: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]


def sliding_window_ci(
    values: ArrayLike, window: int = 200, confidence: float = 0.995
) -> ConfidenceBand:
    """Confidence band over seeds within a trailing sliding window (the paper's error bars).

    ``values`` [seeds, T]. What is pooled: for time t, each seed's values at points
    max(0, t − window + 1) … t are averaged into one number m_s(t) (fewer points at the start);
    the seeds are the independent replicates, so the band is the Student-t interval over the S
    seed means: mean(t) ± t_{(1+confidence)/2, S−1} · sd_s(m_s(t)) / √S (sd with ddof = 1).
    With one seed the bounds are NaN (no spread can be estimated).
    """
    v = _as_array(values)
    if v.ndim != 2 or v.shape[0] < 1:
        raise ValueError(f"values must have shape [seeds >= 1, T], got shape {v.shape}")
    if isinstance(window, bool) or int(window) != window or window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    window = int(window)
    seeds, steps = v.shape
    csum = np.concatenate([np.zeros((seeds, 1)), np.cumsum(v, axis=1)], axis=1)
    end = np.arange(1, steps + 1)
    start = np.maximum(end - window, 0)
    seed_means = (csum[:, end] - csum[:, start]) / (end - start)
    mean = seed_means.mean(0)
    if seeds < 2:
        half = np.full(steps, np.nan)
    else:
        quantile = student_t_ppf(0.5 * (1.0 + confidence), seeds - 1)
        half = quantile * seed_means.std(0, ddof=1) / math.sqrt(seeds)
    return ConfidenceBand(mean, mean - half, mean + half)


def harvest_learned_filter(
    per_agent_apples: ArrayLike, min_apples: float = 1.0
) -> NDArray[np.bool_]:
    """Seeds to keep in Harvest: those in which every agent learned to collect apples.

    ``per_agent_apples`` [seeds, N]: each agent's apples collected per episode, averaged over
    the evaluation period (e.g. the last 50 points). The paper, following Hughes et al. 2018,
    drops seeds with an agent that "fails to collect any apples" (supplement 5.4); the default
    threshold of 1 apple per episode on average marks exactly such an agent, while a learned
    Harvest agent collects tens. Returns a bool mask [seeds]: True where all agents ≥ min_apples.
    """
    apples = _as_array(per_agent_apples)
    if apples.ndim != 2:
        raise ValueError(f"per_agent_apples must have shape [seeds, N], got shape {apples.shape}")
    if not min_apples >= 0:
        raise ValueError(f"min_apples must be >= 0, got {min_apples!r}")
    return (apples >= min_apples).all(-1)


def final_collective_reward(collective: ArrayLike, last: int = 50) -> NDArray[np.float64]:
    """Final collective reward (supplement Table 4): mean over the last ``last`` = 50 points.

    ``collective`` [..., T] is a collective-reward curve (e.g. [seeds, T]); the mean is taken
    over the last dimension only, so the caller averages seeds. If fewer than ``last`` points
    were logged, all of them are averaged.
    """
    c = _as_array(collective)
    if c.ndim < 1 or c.shape[-1] < 1:
        raise ValueError(
            f"collective must have a non-empty last (time) dimension, got shape {c.shape}"
        )
    if isinstance(last, bool) or int(last) != last or last < 1:
        raise ValueError(f"last must be an integer >= 1, got {last!r}")
    return c[..., -int(last):].mean(-1)
