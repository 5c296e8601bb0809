"""What the book reads from recorded episodes: moments of high influence (the paper's Figures
2 and 14), how sparse influence is, and apples the influencee could not see."""

from dataclasses import replace

import numpy as np
import pandas as pd

from ..envs import palette
from ..metrics import fraction_above_mean
from ..envs.views import fields_of_view, in_view
from .format import Episodes


def _require_influence(episodes: Episodes) -> None:
    if not episodes.has_influence:
        raise ValueError(f"the episodes of {episodes.config!r} record no influence: "
                         "its condition computes no influence reward (use an *_influence run)")


# How far above the later mean the influence at a step may be and still count as past the
# episode start (`episode_start_steps`).
START_FACTOR = 2.0


def high_influence_moments(episodes: Episodes, top: int = 10, per_seed: bool = False,
                           from_step: int = 0) -> pd.DataFrame:
    """The `top` (influencer, influencee, step) triples of highest exact influence at episode
    steps `from_step` and later, ranked on the non-negative divergence (`Episodes.exerted`:
    KL, or the JSD a condition rewards), highest first (`per_seed`: the top ones of each
    seed's game). Columns: seed, step, influencer, influencee (agent ids), exerted (the ranked
    value), influence (the reward's divergence, PMI in Harvest), influencee_sees_influencer
    (whether the influencer stands in the influencee's 15x15 view at that step)."""
    _require_influence(episodes)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive int, got {top!r}")
    if isinstance(from_step, bool) or not isinstance(from_step, int) or not 0 <= from_step < episodes.num_steps:
        raise ValueError(f"from_step must be an int in 0..{episodes.num_steps - 1}, got {from_step!r}")
    k_count = episodes.influencers
    if per_seed:
        frames = [high_influence_moments(_one_seed(episodes, s), top, from_step=from_step)
                  for s in range(episodes.num_seeds)]
        return pd.concat(frames, ignore_index=True)
    values = episodes.exerted[:, from_step:]
    flat = values.reshape(-1)
    order = np.argsort(-flat, kind="stable")[:top]
    s, t, k, j = np.unravel_index(order, values.shape)
    t = t + from_step
    influencee = k_count + j
    sees = in_view(episodes.pos[s, t, influencee], episodes.pos[s, t, k])
    return pd.DataFrame({
        "seed": np.asarray(episodes.seeds, dtype=np.int64)[s],
        "step": t.astype(np.int64),
        "influencer": k.astype(np.int64),
        "influencee": influencee.astype(np.int64),
        "exerted": flat[order].astype(np.float64),
        "influence": episodes.influence[s, t, k, j].astype(np.float64),
        "influencee_sees_influencer": sees.astype(bool),
    })


def _one_seed(episodes: Episodes, index: int) -> Episodes:
    sl = slice(index, index + 1)
    return replace(episodes, seeds=[episodes.seeds[index]], maps=episodes.maps[sl], views=episodes.views[sl],
                   pos=episodes.pos[sl], orient=episodes.orient[sl], actions=episodes.actions[sl],
                   rewards=episodes.rewards[sl], influence=episodes.influence[sl], exerted=episodes.exerted[sl],
                   messages=episodes.messages[sl], message_influence=episodes.message_influence[sl])


def influence_by_step(episodes: Episodes, steps: int = 10) -> pd.DataFrame:
    """Exerted influence at each of the first `steps` steps of the episode, over all seeds and
    pairs, against its mean over the whole episode: where episode-start artefacts end.
    Columns: step, mean_exerted, max_exerted, ratio_to_episode_mean."""
    _require_influence(episodes)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= episodes.num_steps:
        raise ValueError(f"steps must be an int in 1..{episodes.num_steps}, got {steps!r}")
    per_step = episodes.exerted.transpose(1, 0, 2, 3).reshape(episodes.num_steps, -1)  # [T, S*K*J]
    overall = per_step.mean()
    return pd.DataFrame({
        "step": np.arange(steps, dtype=np.int64),
        "mean_exerted": per_step[:steps].mean(axis=1),
        "max_exerted": per_step[:steps].max(axis=1),
        "ratio_to_episode_mean": per_step[:steps].mean(axis=1) / overall if overall > 0 else np.nan,
    })


def episode_start_steps(episodes: Episodes, factor: float = START_FACTOR) -> int:
    """How many steps at the start of the episode stand apart: the first step t at which the
    mean exerted influence (over seeds and pairs) is at most `factor` times its mean over steps
    t and later. At step 0 every LSTM starts from zeros and the others' previous actions read
    STAY, a state met once per episode; the influencees' policies may react to the influencer's
    action there far more than anywhere else, and moments ranked over all steps would then be
    episode starts. Returns 0 when nothing stands apart."""
    _require_influence(episodes)
    if not factor >= 1.0:
        raise ValueError(f"factor must be >= 1, got {factor!r}")
    per_step = episodes.exerted.mean(axis=(0, 2, 3))  # [T]
    later_mean = np.cumsum(per_step[::-1])[::-1] / np.arange(len(per_step), 0, -1)  # mean over steps t..T-1
    calm = np.flatnonzero(per_step <= factor * later_mean)
    return int(calm[0]) if calm.size else episodes.num_steps - 1


def influence_sparsity(episodes: Episodes, from_step: int = 0) -> pd.DataFrame:
    """How sparse in time each influencer's influence is, per seed, over episode steps
    `from_step` and later: its exerted influence (`Episodes.exerted`, summed over influencees:
    KL or JSD, never PMI, whose sign makes "above the mean" meaningless), the mean over those
    steps, and the fraction of them above that mean (the paper: below 10% of steps). Columns:
    seed, influencer, steps, mean_influence, max_influence, fraction_above_mean."""
    _require_influence(episodes)
    if isinstance(from_step, bool) or not isinstance(from_step, int) or not 0 <= from_step < episodes.num_steps:
        raise ValueError(f"from_step must be an int in 0..{episodes.num_steps - 1}, got {from_step!r}")
    given = episodes.exerted_given()[:, from_step:]  # [S, T - from_step, K]
    mean = given.mean(axis=1, keepdims=True)
    above = fraction_above_mean(given, axis=1)  # [S, K]; ties with the mean up to rounding are not above it
    rows = [
        {"seed": seed, "influencer": k, "steps": given.shape[1], "mean_influence": mean[s, 0, k],
         "max_influence": given[s, :, k].max(), "fraction_above_mean": above[s, k]}
        for s, seed in enumerate(episodes.seeds) for k in range(episodes.influencers)
    ]
    return pd.DataFrame(rows)


def hidden_apples(episodes: Episodes) -> np.ndarray:
    """Apples that each influencer sees and its influencee does not, per step, int64
    [S, T, K, J]: apples inside influencer k's field of view and outside influencee K + j's
    (apples under an agent are not counted). The paper's Figure 2 is a moment where this is
    positive: the influencer's action tells the influencee about apples it cannot see."""
    _require_influence(episodes)
    apples = (episodes.maps == palette.APPLE).astype(np.int64)  # [S, T, H, W]
    integral = np.zeros(apples.shape[:2] + (episodes.height + 1, episodes.width + 1), dtype=np.int64)
    integral[:, :, 1:, 1:] = apples.cumsum(2).cumsum(3)
    h, w = episodes.height, episodes.width

    def count(top, bottom, left, right) -> np.ndarray:
        """Apples in the rectangles [S, T, K, J] (empty where bottom < top or right < left)."""
        s_idx = np.arange(apples.shape[0])[:, None, None, None]
        t_idx = np.arange(apples.shape[1])[None, :, None, None]
        total = (integral[s_idx, t_idx, bottom + 1, right + 1] - integral[s_idx, t_idx, top, right + 1]
                 - integral[s_idx, t_idx, bottom + 1, left] + integral[s_idx, t_idx, top, left])
        return np.where((bottom >= top) & (right >= left), total, 0)

    k = episodes.influencers
    big = episodes.pos[:, :, :k, None, :]  # influencers [S, T, K, 1, 2]
    small = episodes.pos[:, :, None, k:, :]  # influencees [S, T, 1, J, 2]
    tk, bk, lk, rk = (np.broadcast_to(x, big.shape[:2] + (k, episodes.num_agents - k)) for x in fields_of_view(big, h, w))
    tj, bj, lj, rj = fields_of_view(small, h, w)
    both = count(np.maximum(tk, tj), np.minimum(bk, bj), np.maximum(lk, lj), np.minimum(rk, rj))
    return count(tk, bk, lk, rk) - both


def with_hidden_apples(episodes: Episodes, moments: pd.DataFrame) -> pd.DataFrame:
    """`moments` (from high_influence_moments) with a column hidden_apples: the apples the
    influencer saw and the influencee did not at that step (`hidden_apples`)."""
    hidden = hidden_apples(episodes)
    index = [episodes.seed_index(int(seed)) for seed in moments["seed"]]
    values = hidden[index, moments["step"].to_numpy(), moments["influencer"].to_numpy(),
                    moments["influencee"].to_numpy() - episodes.influencers]
    return moments.assign(hidden_apples=values.astype(np.int64))
