"""What the book reads from recorded episodes: moments of high influence (the paper's Figures
2 and 14), how sparse influence is, and apples the influencee could not see."""

from dataclasses import replace

import numpy as np
import pandas as pd

from ..envs import palette
from ..envs.views import fields_of_view, in_view
from .format import Episodes


def _require_influence(episodes: Episodes) -> None:
    if not episodes.has_influence:
        raise ValueError(f"the episodes of {episodes.config!r} record no influence: "
                         "its condition computes no influence reward (use an *_influence run)")


def high_influence_moments(episodes: Episodes, top: int = 10, per_seed: bool = False) -> pd.DataFrame:
    """The `top` (influencer, influencee, step) triples of highest exact influence, ranked on
    the non-negative divergence (`Episodes.exerted`: KL, or the JSD a condition rewards),
    highest first (`per_seed`: the top ones of each seed's game). Columns: seed, step,
    influencer, influencee (agent ids), exerted (the ranked value), influence (the reward's
    divergence, PMI in Harvest), influencee_sees_influencer (whether the influencer stands in
    the influencee's 15x15 view at that step)."""
    _require_influence(episodes)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive int, got {top!r}")
    k_count = episodes.influencers
    if per_seed:
        frames = [high_influence_moments(_one_seed(episodes, s), top) for s in range(episodes.num_seeds)]
        return pd.concat(frames, ignore_index=True)
    values = episodes.exerted
    flat = values.reshape(-1)
    order = np.argsort(-flat, kind="stable")[:top]
    s, t, k, j = np.unravel_index(order, values.shape)
    influencee = k_count + j
    sees = in_view(episodes.pos[s, t, influencee], episodes.pos[s, t, k])
    return pd.DataFrame({
        "seed": np.asarray(episodes.seeds, dtype=np.int64)[s],
        "step": t.astype(np.int64),
        "influencer": k.astype(np.int64),
        "influencee": influencee.astype(np.int64),
        "exerted": flat[order].astype(np.float64),
        "influence": episodes.influence.reshape(-1)[order].astype(np.float64),
        "influencee_sees_influencer": sees.astype(bool),
    })


def _one_seed(episodes: Episodes, index: int) -> Episodes:
    sl = slice(index, index + 1)
    return replace(episodes, seeds=[episodes.seeds[index]], maps=episodes.maps[sl], views=episodes.views[sl],
                   pos=episodes.pos[sl], orient=episodes.orient[sl], actions=episodes.actions[sl],
                   rewards=episodes.rewards[sl], influence=episodes.influence[sl], exerted=episodes.exerted[sl])


def influence_sparsity(episodes: Episodes) -> pd.DataFrame:
    """How sparse in time each influencer's influence is, per seed: its exerted influence
    (`Episodes.exerted`, summed over influencees: KL or JSD, never PMI, whose sign makes
    "above the mean" meaningless), the episode mean, and the fraction of steps above that mean
    (the paper: below 10% of steps). Columns: seed, influencer, steps, mean_influence,
    max_influence, fraction_above_mean."""
    _require_influence(episodes)
    given = episodes.exerted_given()  # [S, T, K]
    mean = given.mean(axis=1, keepdims=True)
    above = (given > mean).mean(axis=1)  # [S, K]
    rows = [
        {"seed": seed, "influencer": k, "steps": episodes.num_steps, "mean_influence": mean[s, 0, k],
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
