"""Outcome metrics of the paper (collective reward, Gini/equality) and its error bars.

The metrics run on logged data, so they use numpy and accept any array-like (lists, numpy
arrays, torch tensors). The last dimension of ``returns`` indexes agents; leading dimensions are
batch dimensions (seeds, time, ...).

References: Jaques et al. 2019, supplement section 5.4 (Eq. 6, Gini; R·(1−G)), Table 4 (final
collective reward), figure captions (99.5% CI over seeds within a sliding window of 200 agent
steps), and Hughes et al. 2018 (Harvest seeds where an agent never collects apples removed).

Communication metrics (paper section 5.1, Figure 5; supplement 10.4.4, Eq. 8): speaker
consistency, instantaneous coordination (plug-in mutual information between a speaker's symbol
or action at t and a listener's action at t+1, with a time-shuffled bias floor), influence
sparsity (fraction of steps above the mean) and the Spearman correlation between how often an
agent is influenced and its reward. They take integer codes (symbols, actions) and float
influence series; time is the first axis unless said otherwise.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ConfidenceBand",
    "PairwiseCoordination",
    "SpearmanResult",
    "align_next_step",
    "collective_reward",
    "collective_times_equality",
    "equality",
    "final_collective_reward",
    "fraction_above_mean",
    "fraction_influenced",
    "gini",
    "harvest_learned_filter",
    "influenced_reward_correlation",
    "influential_moments",
    "instantaneous_coordination",
    "max_pairwise_coordination",
    "shuffled_coordination",
    "sliding_window_ci",
    "speaker_consistency",
    "spearman",
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


# --- Communication metrics (paper section 5.1, Figure 5; supplement 10.4.4, Eq. 8) -----------


def _count_arg(value: int, name: str) -> int:
    """An alphabet size: an int >= 1 (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _codes(values: ArrayLike | Any, num: int, name: str, num_name: str) -> NDArray[np.int64]:
    """1-D int64 copy of integer codes in 0..num−1; errors name the argument and bad values."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            raise ValueError(f"{name} must hold integers, got {a[bad][:5].tolist()}")
    elif a.dtype.kind not in "biu" and a.size:
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    codes = a.astype(np.int64)
    bad = (codes < 0) | (codes >= num)
    if bad.any():
        where = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(
            f"{name} must lie in 0..{num - 1} ({num_name} = {num}), "
            f"got {codes[bad][:5].tolist()} at indices {where}"
        )
    return codes


def _paired_codes(
    x: ArrayLike, y: ArrayLike, num_x: int, num_y: int, names: tuple[str, str, str, str]
) -> tuple[NDArray[np.int64], NDArray[np.int64], int, int]:
    """Validated equal-length, non-empty code sequences and their alphabet sizes."""
    x_name, y_name, nx_name, ny_name = names
    num_x = _count_arg(num_x, nx_name)
    num_y = _count_arg(num_y, ny_name)
    xc = _codes(x, num_x, x_name, nx_name)
    yc = _codes(y, num_y, y_name, ny_name)
    if xc.shape != yc.shape:
        raise ValueError(
            f"{x_name} and {y_name} must have equal lengths, got {xc.size} and {yc.size}"
        )
    if xc.size == 0:
        raise ValueError(f"{x_name} and {y_name} are empty: no steps to measure")
    return xc, yc, num_x, num_y


def _joint_counts(
    x: NDArray[np.int64], y: NDArray[np.int64], num_x: int, num_y: int
) -> NDArray[np.float64]:
    """Contingency table [num_x, num_y] of the pairs (x[t], y[t])."""
    flat = np.bincount(x * num_y + y, minlength=num_x * num_y)
    return flat.reshape(num_x, num_y).astype(np.float64)


def _row_entropies(counts: NDArray[np.float64]) -> NDArray[np.float64]:
    """Entropy in nats of each row of a count table, rows normalised to distributions."""
    p = counts / counts.sum(1, keepdims=True)
    logp = np.log(np.where(p > 0, p, 1.0))
    return -(p * logp).sum(1)


def speaker_consistency(
    symbols: ArrayLike, actions: ArrayLike, num_symbols: int, num_actions: int
) -> float:
    """Speaker consistency of one speaker (supplement 10.4.4, Eq. 8), normalised to [0, 1].

    ``symbols[t]`` is the symbol m the speaker emitted at step t and ``actions[t]`` the action a
    it took at the same step (integer codes in 0..num_symbols−1 and 0..num_actions−1). With
    p(a | m = c) and p(m | a) the plug-in (count-based) conditional distributions,

        SC = ½ [ (1/|C|) Σ_{c ∈ C} (1 − H(p(a | m = c)) / log num_actions)
               + (1/|A|) Σ_{a ∈ A} (1 − H(p(m | a)) / log num_symbols) ],

    C the symbols emitted at least once and A the actions taken at least once. H_max is the
    maximal entropy of the conditioned-on alphabet: log num_actions for p(a | m), log
    num_symbols for p(m | a) (the ratio H/H_max does not depend on the log base).

    Normalisation: Eq. 8 sums the terms (and sums over speakers k); per speaker it then lies in
    [0, (|C| + |A|)/2]. Here each sum is divided by its number of terms, which keeps the
    paper's terms and equal weights and puts the score in [0, 1] as the paper states: 1 when
    every emitted symbol determines the action and every taken action determines the symbol (a
    one-to-one mapping between the used symbols and the used actions), 0 when every
    conditional is uniform over its whole alphabet (symbols and actions independent and
    uniform). Each used symbol (action) weighs the same, however often it was used. For several
    speakers, average the per-speaker scores (Eq. 8's Σ_k, divided by N to stay in [0, 1]).

    A symbol never emitted contributes nothing: p(a | m = c) is undefined, so the symbol is
    left out of the first average (neither 1 nor 0 is counted for it); likewise an action never
    taken is left out of the second average. The unused values still count in the other
    side's H_max (an alphabet of num_symbols symbols, used or not). So a speaker with a
    one-to-one mapping on a subset of the symbols and actions still scores 1. When an alphabet
    has a single value (H_max = 0) every conditional over it is deterministic and its terms
    are 1.

    A constant speaker (one symbol, whatever its actions) gets ½ at least: each p(m | a) is
    deterministic. This is a property of Eq. 8, kept as is.
    """
    m, a, num_symbols, num_actions = _paired_codes(
        symbols, actions, num_symbols, num_actions,
        ("symbols", "actions", "num_symbols", "num_actions"),
    )
    joint = _joint_counts(m, a, num_symbols, num_actions)

    def side(counts: NDArray[np.float64], alphabet: int) -> float:
        used = counts[counts.sum(1) > 0]
        if alphabet == 1:
            return 1.0
        return float(np.mean(1.0 - _row_entropies(used) / math.log(alphabet)))

    score = 0.5 * (side(joint, num_actions) + side(joint.T, num_symbols))
    return min(max(score, 0.0), 1.0)


def _log_base(base: float) -> float:
    if isinstance(base, bool) or not (isinstance(base, (int, float)) and base > 0 and base != 1):
        raise ValueError(f"base must be a number > 0 and != 1, got {base!r}")
    return math.log(base)


def instantaneous_coordination(
    x: ArrayLike, y: ArrayLike, num_x: int, num_y: int, base: float = math.e
) -> float:
    """Instantaneous coordination (paper section 5.1): plug-in mutual information I(X; Y).

    ``x[t]``, ``y[t]`` are already-aligned pairs (see `align_next_step`): x the speaker's symbol
    m^k_t (symbol/action IC) or action a^k_t (action/action IC), y the listener's next action
    a^j_{t+1}. With n_xy the count of the pair (x, y) over the n pairs, n_x and n_y the marginal
    counts,

        I = Σ_{x, y: n_xy > 0} (n_xy / n) · log(n_xy · n / (n_x · n_y)),

    in nats by default (``base=2`` gives bits). The paper does not state the units of
    Figure 5, so nats, the natural unit of the influence KL, are the default. The value lies in
    [0, min(log num_x, log num_y)]: 0 when the empirical joint table is exactly the product of
    its marginals, log num for a bijection y = f(x) with x uniform. Pooling all pairs in one
    table is the paper's "average over all trajectory steps". The plug-in estimate is biased
    upwards on few samples; `shuffled_coordination` measures that floor.
    """
    xc, yc, num_x, num_y = _paired_codes(x, y, num_x, num_y, ("x", "y", "num_x", "num_y"))
    log_base = _log_base(base)
    joint = _joint_counts(xc, yc, num_x, num_y)
    n = float(xc.size)
    expected = np.outer(joint.sum(1), joint.sum(0))
    nz = joint > 0
    mi = float(np.sum(joint[nz] / n * np.log(joint[nz] * n / expected[nz])))
    return max(mi, 0.0) / log_base


def _step_mask(mask: ArrayLike | None, steps: int, name: str) -> NDArray[np.bool_] | None:
    if mask is None:
        return None
    m = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
    if m.shape != (steps,):
        raise ValueError(f"{name} must have shape ({steps},), one flag per step, got {m.shape}")
    if m.dtype.kind != "b" and not np.isin(m, (0, 1)).all():
        raise ValueError(f"{name} must be boolean (or 0/1), got values {np.unique(m)[:5].tolist()}")
    return m.astype(bool)


def _next_step_pairs(
    steps: int,
    episode_starts: ArrayLike | None,
    dones: ArrayLike | None,
    mask: ArrayLike | None,
) -> NDArray[np.int64]:
    """Indices t of the kept pairs (t, t+1)."""
    keep = np.ones(max(steps - 1, 0), dtype=bool)
    starts = _step_mask(episode_starts, steps, "episode_starts")
    ends = _step_mask(dones, steps, "dones")
    selected = _step_mask(mask, steps, "mask")
    if starts is not None:
        keep &= ~starts[1:]
    if ends is not None:
        keep &= ~ends[:-1]
    if selected is not None:
        keep &= selected[:-1]
    return np.flatnonzero(keep)


def align_next_step(
    x: ArrayLike,
    y: ArrayLike,
    episode_starts: ArrayLike | None = None,
    dones: ArrayLike | None = None,
    mask: ArrayLike | None = None,
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Pairs (x[t], y[t+1]) of two step-aligned sequences, never crossing an episode boundary.

    ``x`` and ``y`` have the same length T along their first (time) axis; without masks the
    result is (x[:-1], y[1:]). The pair at t is dropped when ``episode_starts[t+1]`` (step t+1
    begins a new episode), when ``dones[t]`` (step t ends its episode), or when ``mask[t]`` is
    False (``mask`` selects by the speaker's step t, e.g. `influential_moments`). All masks are
    boolean [T]; either boundary mask (or both) may be given.
    """
    xa = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    ya = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
    if xa.ndim < 1 or ya.ndim < 1 or xa.shape[0] != ya.shape[0]:
        raise ValueError(
            f"x and y must have the same number of steps along axis 0, got shapes "
            f"{xa.shape} and {ya.shape}"
        )
    t = _next_step_pairs(xa.shape[0], episode_starts, dones, mask)
    return xa[t], ya[t + 1]


def shuffled_coordination(
    x: ArrayLike,
    y: ArrayLike,
    num_x: int,
    num_y: int,
    seed: int | np.random.Generator | None = 0,
    repeats: int = 20,
    base: float = math.e,
) -> float:
    """Bias floor of `instantaneous_coordination`: the mean plug-in MI of time-shuffled pairs.

    Each of ``repeats`` times, ``y`` is randomly permuted against ``x`` (same marginals, no
    dependence left) and `instantaneous_coordination` is recomputed; the mean is returned. It
    is ≥ 0 and, on n pairs, close to (num_x − 1)(num_y − 1) / (2n) nats for the plug-in
    estimator: a true coordination should be read against it. ``seed`` is an int, a numpy
    Generator or None (fresh entropy).
    """
    xc, yc, num_x, num_y = _paired_codes(x, y, num_x, num_y, ("x", "y", "num_x", "num_y"))
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    values = [
        instantaneous_coordination(xc, rng.permutation(yc), num_x, num_y, base)
        for _ in range(int(repeats))
    ]
    return float(np.mean(values))


def _float_array(values: ArrayLike | Any, name: str) -> NDArray[np.float64]:
    a = _as_array(values)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {a[~np.isfinite(a)][:5].tolist()}")
    return a


_MEAN_TIE_RTOL = 1e-12


def _minus_mean(values: NDArray[np.float64], axis: int | None) -> NDArray[np.float64]:
    """values − their mean over ``axis``, with differences within rounding set to exactly 0.

    A float mean is not exact (the mean of ten 0.1 is below 0.1), so a constant series would
    compare as "above its mean" at every step. Differences of at most 1e−12 times the largest
    magnitude of the series count as ties with the mean.
    """
    diff = values - values.mean(axis=axis, keepdims=True)
    scale = np.abs(values).max(axis=axis, keepdims=True)
    return np.where(np.abs(diff) <= _MEAN_TIE_RTOL * scale, 0.0, diff)


def influential_moments(influence: ArrayLike, axis: int = 0) -> NDArray[np.bool_]:
    """Steps of high influence (paper section 5.1): influence ≥ its own mean over time.

    ``influence`` holds one or several influence series with time along ``axis``; each series
    is compared with its own mean over that axis ("timesteps on which influence was greater
    than or equal to the mean influence"). Values equal to the mean up to rounding (relative
    1e−12) count as equal, so a constant series is influential at every step. Returns a
    boolean array of the same shape.
    """
    inf = _float_array(influence, "influence")
    if inf.ndim < 1 or inf.shape[axis] < 1:
        raise ValueError(f"influence must have a non-empty time axis {axis}, got shape {inf.shape}")
    return _minus_mean(inf, axis) >= 0


def fraction_above_mean(influence: ArrayLike, axis: int = 0) -> NDArray[np.float64]:
    """Influence sparsity (paper section 5.1): fraction of steps above the agent's own mean.

    For each series along ``axis`` (time; e.g. ``influence`` [T, K], one column per
    influencer, its exerted non-negative influence summed over influencees):
    (1/T) · #{t : influence[t] > mean_t influence}. Strict ">" as in the paper ("greater than
    its mean influence in less than 10% of timesteps") and as `ssdlib.episodes.analysis.
    influence_sparsity`. Values equal to the mean up to rounding (relative 1e−12) are not
    above it, so a constant series gives 0. Returns the series' shape without ``axis``.
    """
    inf = _float_array(influence, "influence")
    if inf.ndim < 1 or inf.shape[axis] < 1:
        raise ValueError(f"influence must have a non-empty time axis {axis}, got shape {inf.shape}")
    return (_minus_mean(inf, axis) > 0).mean(axis=axis)


def fraction_influenced(received: ArrayLike, threshold: float | None = None) -> NDArray[np.float64]:
    """How often each agent is influenced (paper section 5.1, "agents who are more often
    influenced"), one run: the fraction of steps at which it is influenced.

    ``received`` [T, N]: the influence each agent j receives at each step (the speakers'
    influence on it, summed over speakers: Σ_k of influence of k on j). Agent j is influenced
    at step t when received[t, j] ≥ ``threshold`` (the paper's influential moments use
    "≥ the mean influence"); the default threshold is the mean of ``received`` over all steps
    and all agents of the run, one level shared by the run's agents (ties with it up to
    rounding, relative 1e−12, count as reaching it). Returns [N]:
    (1/T) · #{t : received[t, j] ≥ threshold}.

    Why not each agent's own mean: that is the sparsity statistic (`fraction_above_mean`), which
    is blind to how strongly an agent is influenced (a constantly influenced agent scores 0);
    a threshold shared by the run's agents ranks them by how often they are influenced.
    """
    r = _float_array(received, "received")
    if r.ndim != 2 or r.shape[0] < 1 or r.shape[1] < 1:
        raise ValueError(f"received must have shape [T >= 1, N >= 1], got shape {r.shape}")
    if threshold is None:
        return (_minus_mean(r, None) >= 0).mean(axis=0)
    if isinstance(threshold, bool) or not math.isfinite(float(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return (r >= float(threshold)).mean(axis=0)


class PairwiseCoordination(NamedTuple):
    """Largest coordination over speaker/listener pairs, which pair, and the whole table.

    ``matrix`` [K, J] holds each pair's coordination (NaN for excluded pairs and pairs with no
    aligned step); ``value`` = matrix[speaker, listener] is its maximum.
    """

    value: float
    speaker: int
    listener: int
    matrix: NDArray[np.float64]


def max_pairwise_coordination(
    speaker: ArrayLike,
    listener: ArrayLike,
    num_x: int,
    num_y: int,
    episode_starts: ArrayLike | None = None,
    dones: ArrayLike | None = None,
    influence: ArrayLike | None = None,
    exclude_self: bool = True,
    base: float = math.e,
) -> PairwiseCoordination:
    """Instantaneous coordination of every speaker/listener pair and its maximum (Figure 5).

    ``speaker`` [T, K]: each speaker's symbol (symbol/action IC) or action (action/action IC)
    at each step; ``listener`` [T, J]: each listener's action. For each pair (k, j) the pairs
    (speaker[t, k], listener[t+1, j]) are aligned by `align_next_step` (episode boundaries from
    ``episode_starts`` / ``dones``, boolean [T]) and `instantaneous_coordination` is computed;
    the result is the maximum over pairs ("average over all trajectory steps, then take the
    maximum value between any two agents").

    ``influence`` restricts each pair to influential moments: [T, K] (speaker k's influence at
    step t) or [T, K, J] (k's influence on j); a pair keeps the steps t where that influence is
    ≥ its own mean over the T steps (`influential_moments`). ``exclude_self`` (needs K = J, the
    same agents on both sides) leaves out k = j; pass False for distinct speaker and listener
    sets.
    """
    def as_2d(v: ArrayLike, name: str) -> NDArray[Any]:
        a = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
        if a.ndim != 2 or a.shape[1] < 1:
            raise ValueError(f"{name} must have shape [T, agents >= 1], got shape {a.shape}")
        return a

    xs = as_2d(speaker, "speaker")
    ys = as_2d(listener, "listener")
    num_x = _count_arg(num_x, "num_x")
    num_y = _count_arg(num_y, "num_y")
    xs = _codes(xs.ravel(), num_x, "speaker", "num_x").reshape(xs.shape)
    ys = _codes(ys.ravel(), num_y, "listener", "num_y").reshape(ys.shape)
    steps, k_num = xs.shape
    j_num = ys.shape[1]
    if ys.shape[0] != steps:
        raise ValueError(
            "speaker and listener must have the same number of steps, "
            f"got {steps} and {ys.shape[0]}"
        )
    if exclude_self and k_num != j_num:
        raise ValueError(
            f"exclude_self needs as many speakers as listeners, got {k_num} and {j_num}; "
            "pass exclude_self=False for distinct speaker and listener sets"
        )
    moments = None
    if influence is not None:
        inf = _float_array(influence, "influence")
        if inf.shape not in ((steps, k_num), (steps, k_num, j_num)):
            raise ValueError(
                f"influence must have shape ({steps}, {k_num}) or ({steps}, {k_num}, {j_num}), "
                f"got {inf.shape}"
            )
        moments = influential_moments(inf, axis=0)
        if moments.ndim == 2:
            moments = np.repeat(moments[:, :, None], j_num, axis=2)
    matrix = np.full((k_num, j_num), np.nan)
    for k in range(k_num):
        for j in range(j_num):
            if exclude_self and k == j:
                continue
            mask = None if moments is None else moments[:, k, j]
            t = _next_step_pairs(steps, episode_starts, dones, mask)
            if t.size:
                matrix[k, j] = instantaneous_coordination(
                    xs[t, k], ys[t + 1, j], num_x, num_y, base
                )
    if np.isnan(matrix).all():
        raise ValueError("no speaker/listener pair has an aligned step to measure")
    k_best, j_best = np.unravel_index(int(np.nanargmax(matrix)), matrix.shape)
    return PairwiseCoordination(float(matrix[k_best, j_best]), int(k_best), int(j_best), matrix)


class SpearmanResult(NamedTuple):
    """Spearman's rank correlation ρ, its two-sided p-value and the number of pairs."""

    rho: float
    pvalue: float
    n: int


def _average_ranks(v: NDArray[np.float64]) -> NDArray[np.float64]:
    """Ranks 1..n, ties given the average of the ranks they span."""
    order = np.argsort(v, kind="mergesort")
    sorted_v = v[order]
    new_group = np.concatenate([[True], sorted_v[1:] != sorted_v[:-1]])
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.concatenate([starts[1:], [v.size]])
    mean_rank = 0.5 * (starts + 1 + ends)  # average of ranks starts+1 .. ends
    ranks = np.empty(v.size)
    ranks[order] = mean_rank[group]
    return ranks


def spearman(x: ArrayLike, y: ArrayLike) -> SpearmanResult:
    """Spearman's ρ: the Pearson correlation of the average ranks (ties share their mean
    rank), with the two-sided p-value of the t approximation used by scipy.stats.spearmanr:
    t = ρ √((n − 2) / (1 − ρ²)) on n − 2 degrees of freedom, p = 2 P(T > |t|) (p = 0 for
    |ρ| = 1). Needs n ≥ 3 finite pairs and neither sequence constant (ρ undefined)."""
    xa = _float_array(x, "x").ravel()
    ya = _float_array(y, "y").ravel()
    if xa.size != ya.size:
        raise ValueError(f"x and y must have equal sizes, got {xa.size} and {ya.size}")
    n = xa.size
    if n < 3:
        raise ValueError(f"Spearman's correlation needs at least 3 pairs, got {n}")
    rx = _average_ranks(xa) - 0.5 * (n + 1)
    ry = _average_ranks(ya) - 0.5 * (n + 1)
    for name, r in (("x", rx), ("y", ry)):
        if not np.any(r):
            raise ValueError(f"{name} is constant: Spearman's correlation is undefined")
    rho = float(np.dot(rx, ry) / math.sqrt(np.dot(rx, rx) * np.dot(ry, ry)))
    rho = min(max(rho, -1.0), 1.0)
    if abs(rho) == 1.0:
        return SpearmanResult(rho, 0.0, n)
    t = abs(rho) * math.sqrt((n - 2) / (1.0 - rho * rho))
    return SpearmanResult(rho, min(1.0, 2.0 * _t_upper_tail(t, n - 2)), n)


def influenced_reward_correlation(
    times_influenced: ArrayLike, rewards: ArrayLike, normalize: bool = False
) -> SpearmanResult:
    """Spearman's ρ between how often agents are influenced and their reward (section 5.1).

    ``times_influenced`` and ``rewards`` have the same shape: [agents], or [runs, agents] with
    one row per influence run (condition × seed) and one column per agent; every agent of every
    run is one pair (the paper: 100 conditions, Cleanup ρ = .67, Harvest ρ = .34,
    p < 0.001). "How often an agent is influenced" is `fraction_influenced`: the fraction of
    steps at which the influence it receives is ≥ its run's mean received influence; the
    reward is the agent's individual extrinsic return.

    ``normalize`` (2-D only): the paper "normalized and correlated the influence and individual
    rewards"; with True each run's row of both arrays is standardised ((v − mean) / sd over the
    run's agents; a row with no spread becomes 0) before pooling, so the correlation is taken
    within runs rather than between runs of different reward scales. Returns `SpearmanResult`.
    """
    ti = _float_array(times_influenced, "times_influenced")
    rw = _float_array(rewards, "rewards")
    if ti.shape != rw.shape:
        raise ValueError(
            f"times_influenced and rewards must have the same shape, got {ti.shape} and {rw.shape}"
        )
    if ti.ndim not in (1, 2):
        raise ValueError(f"expected shape [agents] or [runs, agents], got shape {ti.shape}")
    if normalize:
        if ti.ndim != 2:
            raise ValueError(f"normalize needs shape [runs, agents], got shape {ti.shape}")

        def standardise(v: NDArray[np.float64]) -> NDArray[np.float64]:
            sd = v.std(axis=1, keepdims=True)
            centred = v - v.mean(axis=1, keepdims=True)
            return np.where(sd > 0, centred / np.where(sd > 0, sd, 1.0), 0.0)

        ti, rw = standardise(ti), standardise(rw)
    return spearman(ti.ravel(), rw.ravel())
