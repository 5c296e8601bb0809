"""Experiment II, influential communication (paper section 5): what the book computes from the
finished runs of the communication conditions and from their recorded episodes.

From a run's recorded episodes (`ssdlib.episodes.ensure_episodes`: one fresh episode per seed,
S seeds, T steps, N agents, V symbols, A actions; `Episodes.messages` [S, T, N] the symbol each
agent said at step t, `Episodes.message_influence` [S, T, N, N-1] the influence of speaker k's
symbol of step t on its jj-th other agent's action at step t + 1):

- `communication_metrics`: Figure 5, per seed. Each agent's speaker consistency (supplement
  Eq. 8, `ssdlib.metrics.speaker_consistency`); the symbol/action and action/action
  instantaneous coordination, I(m^k_t; a^j_{t+1}) and I(a^k_t; a^j_{t+1}), as the largest over
  speaker -> listener pairs (`ssdlib.metrics.max_pairwise_coordination`). Each is measured at all
  steps and, where the symbols' influence is recorded, at the speaker's influential moments (its
  total influence at or above its own mean, `ssdlib.metrics.influential_moments`), and each
  stands beside the same statistic on time-shuffled pairs, the floor that the plug-in
  estimator reaches with no dependence at all. `figure5_summary` and `plot_figure5` turn it
  into the figure.
- `influence_sparsity`: the fraction of steps at which a speaker's influence is above its own
  mean (the paper: under 10%).
- `influenced_and_returns` and `influence_reward_correlation`: how often each agent is
  influenced against its individual return, Spearman's rho over all agents of the influence
  runs (the paper: Cleanup .67, Harvest .34).

From the training metrics, the chapter uses `ssdlib.experiments.social_dilemmas` (final
rewards, Table 4, the listening diagnostic), which knows the communication conditions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .. import metrics as m
from . import social_dilemmas as sd

GAMES = sd.GAMES
COMMUNICATION = ("comm_baseline", "comm_influence")  # the conditions whose agents say symbols

# The paper's numbers, references only (its runs: 5e8 env steps per seed).
PAPER_CORRELATION = {"cleanup": 0.67, "harvest": 0.34}  # section 5.1: Spearman's rho, p < 0.001
PAPER_CORRELATION_CONDITIONS = 100  # "100 different experimental conditions" per game
PAPER_SPARSITY = 0.10  # section 5.1: influence above its mean "in less than 10% of timesteps"

MEASURES = ("speaker consistency", "symbol/action IC", "action/action IC")
MOMENTS = ("all steps", "influential moments")
SHUFFLE_REPEATS = 20


# ---------------------------------------------------------------------------- settings
def settings(configs: list[str], preset: str) -> pd.DataFrame:
    """The settings of the communication configs (the paper's Table 2, as our config files hold
    them), one row per config; the curriculum C at the paper's scale and rescaled to `preset`."""
    from ..training.conditions import get_preset, load_config  # torch: only here

    rows = []
    for config in configs:
        c = load_config(config)
        if not c.model.vocabulary:
            raise ValueError(f"config {config!r} does not communicate (model.vocabulary = 0)")
        influence = c.reward.scheme == "influence"
        scale = get_preset(preset, c.env).scale
        rows.append({
            "config": config,
            "vocabulary V": c.model.vocabulary,
            "symbol embedding": c.model.message_embedding,
            "α (extrinsic, π_m)": c.reward.extrinsic_weight if influence else 1.0,
            "β (influence, π_m)": c.reward.influence_weight if influence else 0.0,
            "divergence": c.reward.divergence.upper() if influence else "–",
            "C, paper scale (10⁶ steps)": c.reward.curriculum_steps / 1e6 if influence else math.nan,
            f"C on preset {preset} (steps)": c.reward.curriculum_steps * scale if influence else math.nan,
            "comm. entropy weight": c.optim.comm_entropy_coef,
            "comm. loss weight": c.optim.comm_loss_weight,
            "entropy weight (π_e)": c.optim.entropy_coef,
            "learning rate": f"{c.optim.lr_init:.3g} → {c.optim.lr_end:.2g}",
        })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- recorded episodes
def listener_slot(speaker: int, listener: int) -> int:
    """Where `listener` sits among `speaker`'s other agents (message_influence's last axis):
    the others in index order, skipping the speaker."""
    if speaker == listener:
        raise ValueError(f"agent {speaker} is not one of its own listeners")
    return listener - (listener > speaker)


def exerted(message_influence: np.ndarray) -> np.ndarray:
    """Each speaker's total influence, [..., N, N-1] -> [..., N]: the sum over its listeners."""
    return np.asarray(message_influence, dtype=np.float64).sum(-1)


def received(message_influence: np.ndarray) -> np.ndarray:
    """The influence each agent receives, [..., N, N-1] -> [..., N]: the sum over the speakers
    of their influence on it (at the step the symbol was said)."""
    mi = np.asarray(message_influence, dtype=np.float64)
    n = mi.shape[-2]
    if mi.shape[-1] != n - 1:
        raise ValueError(f"message influence must have shape [..., N, N-1], got {mi.shape}")
    out = np.zeros(mi.shape[:-2] + (n,))
    for k in range(n):
        for jj in range(n - 1):
            out[..., jj + (jj >= k)] += mi[..., k, jj]
    return out


def _check_communicates(episodes: Any) -> None:
    if not (episodes.vocabulary > 0 and episodes.messages.ndim == 3 and episodes.messages.shape[2] > 0):
        raise ValueError(f"the recorded episodes of {episodes.config!r} hold no symbols: the run does not "
                         "communicate, or was recorded before the symbols were (record it again)")


def _has_message_influence(episodes: Any) -> bool:
    return episodes.message_influence.ndim == 4 and episodes.message_influence.shape[2] > 0


def _require_message_influence(episodes: Any) -> None:
    _check_communicates(episodes)
    if not _has_message_influence(episodes):
        raise ValueError(f"the recorded episodes of {episodes.config!r} hold no influence of the symbols "
                         "(a run without the influence reward on its symbols, e.g. the communication baseline)")


def consistency(symbols: np.ndarray, actions: np.ndarray, vocabulary: int, num_actions: int,
                mask: np.ndarray | None = None, repeats: int = SHUFFLE_REPEATS,
                rng: np.random.Generator | None = None) -> tuple[float, float, int]:
    """One speaker's consistency (`ssdlib.metrics.speaker_consistency`) over the steps of `mask`
    (all steps when None), its shuffled floor (the symbols permuted in time against the actions,
    the mean over `repeats`) and the number of steps: (value, shuffled, steps). NaN and 0 steps
    when the mask selects none."""
    symbols, actions = np.asarray(symbols), np.asarray(actions)
    if mask is not None:
        symbols, actions = symbols[mask], actions[mask]
    if symbols.size == 0:
        return math.nan, math.nan, 0
    rng = np.random.default_rng(0) if rng is None else rng
    value = m.speaker_consistency(symbols, actions, vocabulary, num_actions)
    shuffled = np.mean([m.speaker_consistency(rng.permutation(symbols), actions, vocabulary, num_actions)
                        for _ in range(repeats)])
    return value, float(shuffled), int(symbols.size)


def coordination(speaker: np.ndarray, listener: np.ndarray, num_x: int, num_y: int,
                 influence: np.ndarray | None = None, repeats: int = SHUFFLE_REPEATS,
                 rng: np.random.Generator | None = None) -> dict[str, float]:
    """The largest instantaneous coordination I(x^k_t; a^j_{t+1}) over speaker -> listener pairs
    k != j of one episode (`ssdlib.metrics.max_pairwise_coordination`), and its shuffled floor.

    `speaker` [T, N]: each agent's symbol (symbol/action IC, num_x = V) or action (action/action
    IC, num_x = A); `listener` [T, N]: each agent's action. `influence` [T, N], each speaker's
    total influence per step, restricts speaker k's pairs to its influential moments (influence
    at or above its own mean over the T steps); None: all steps.

    The floor is the same statistic on pairs with no dependence left: each time, every pair's
    listener actions are permuted in time against the speaker's (`ssdlib.metrics.
    shuffled_coordination`, keeping each pair's steps and marginals) and the largest pair is
    taken; the mean over `repeats`. A maximum over 20 pairs of plug-in estimates is biased
    upwards, most on few steps (at influential moments), and a coordination counts only as far
    as it rises above this floor.

    Returns value, speaker, listener, steps (the best pair's aligned steps), shuffled; NaN
    (and -1, 0) when no pair has an aligned step."""
    speaker, listener = np.asarray(speaker), np.asarray(listener)
    n = speaker.shape[1]
    try:
        best = m.max_pairwise_coordination(speaker, listener, num_x, num_y, influence=influence)
    except ValueError as error:
        if "no speaker/listener pair" not in str(error):
            raise
        return {"value": math.nan, "speaker": -1, "listener": -1, "steps": 0, "shuffled": math.nan}
    moments = None if influence is None else m.influential_moments(influence, axis=0)
    aligned = []
    for k in range(n):
        for j in range(n):
            if j == k:
                continue
            x, y = m.align_next_step(speaker[:, k], listener[:, j], mask=None if moments is None else moments[:, k])
            if x.size:
                aligned.append((x, y))
    x, _ = m.align_next_step(speaker[:, best.speaker], listener[:, best.listener],
                             mask=None if moments is None else moments[:, best.speaker])
    rng = np.random.default_rng(0) if rng is None else rng
    floor = np.mean([max(m.shuffled_coordination(x_, y_, num_x, num_y, seed=rng, repeats=1) for x_, y_ in aligned)
                     for _ in range(repeats)])
    return {"value": best.value, "speaker": best.speaker, "listener": best.listener, "steps": int(x.size),
            "shuffled": float(floor)}


def communication_metrics(episodes: Any, repeats: int = SHUFFLE_REPEATS, seed: int = 0) -> pd.DataFrame:
    """Figure 5's measures for one run's recorded episodes, per seed (tidy: one row per seed,
    measure, moments and, for speaker consistency, agent).

    Measures (MEASURES): speaker consistency of each agent (its symbol and its action of the
    same step), symbol/action IC and action/action IC (the largest over speaker -> listener
    pairs, `coordination`). Moments (MOMENTS): "all steps", and, when the episodes hold the
    symbols' influence, "influential moments" (each speaker's steps with total influence at or
    above its own mean; the IC keeps the pairs (t, t + 1) whose speaker step t is one). Every
    value has its shuffled floor beside it (`consistency`, `coordination`; seeded by `seed` and
    the seed's index, so the table is reproducible).

    Columns: config, game, condition, seed, measure, moments, agent (the speaker; the best
    pair's for the IC), listener (the best pair's; -1 for speaker consistency), value, shuffled,
    steps (the steps or aligned pairs the value is computed on)."""
    _check_communicates(episodes)
    game, condition = sd.split_config(episodes.config)
    vocabulary, actions_count = int(episodes.vocabulary), len(episodes.action_names)
    n = episodes.actions.shape[2]
    rows = []
    for s, run_seed in enumerate(episodes.seeds):
        rng = np.random.default_rng([seed, s])
        symbols, actions = episodes.messages[s], episodes.actions[s]
        influence = exerted(episodes.message_influence[s]) if _has_message_influence(episodes) else None
        for moments in MOMENTS:
            if moments == "influential moments" and influence is None:
                continue
            given = influence if moments == "influential moments" else None
            mask = None if given is None else m.influential_moments(given, axis=0)
            base = {"config": episodes.config, "game": game, "condition": condition, "seed": run_seed,
                    "moments": moments}
            for k in range(n):
                value, shuffled, steps = consistency(symbols[:, k], actions[:, k], vocabulary, actions_count,
                                                     None if mask is None else mask[:, k], repeats, rng)
                rows.append({**base, "measure": "speaker consistency", "agent": k, "listener": -1,
                             "value": value, "shuffled": shuffled, "steps": steps})
            for measure, speaker, num_x in (("symbol/action IC", symbols, vocabulary),
                                            ("action/action IC", actions, actions_count)):
                c = coordination(speaker, actions, num_x, actions_count, given, repeats, rng)
                rows.append({**base, "measure": measure, "agent": c["speaker"], "listener": c["listener"],
                             "value": c["value"], "shuffled": c["shuffled"], "steps": c["steps"]})
    columns = ["config", "game", "condition", "seed", "measure", "moments", "agent", "listener", "value", "shuffled",
               "steps"]
    return pd.DataFrame(rows, columns=columns)


def figure5_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """`communication_metrics` rows (of one or several runs) per config, measure and moments:
    per seed, speaker consistency is the mean over agents (Eq. 8's sum over speakers, divided
    by N to stay in [0, 1]) and each IC its value; then the mean and standard deviation over
    seeds of the value and of its shuffled floor, and the mean number of steps. Columns:
    config, game, condition, measure, moments, value, value sd, shuffled, shuffled sd, steps,
    seeds."""
    keys = ["config", "game", "condition", "measure", "moments"]
    per_seed = frame.groupby(keys + ["seed"], sort=False)[["value", "shuffled", "steps"]].mean().reset_index()
    grouped = per_seed.groupby(keys, sort=False)
    out = grouped[["value", "shuffled", "steps"]].mean()
    out["value sd"] = grouped["value"].std(ddof=1)
    out["shuffled sd"] = grouped["shuffled"].std(ddof=1)
    out["seeds"] = grouped.size()
    out = out.reset_index()
    order = {measure: i for i, measure in enumerate(MEASURES)} | {moments: i for i, moments in enumerate(MOMENTS)}
    out = out.sort_values(["config", "measure", "moments"], key=lambda c: c.map(order) if c.name != "config" else c,
                          kind="stable")
    return out[keys + ["value", "value sd", "shuffled", "shuffled sd", "steps", "seeds"]].reset_index(drop=True)


def plot_figure5(axes, summary: pd.DataFrame, game: str, colours: dict[str, str] | None = None) -> None:
    """One game's Figure 5 on three axes (one per measure of MEASURES): per moments group, a
    bar per config (mean ± sd over seeds), its shuffled floor as a black line across the bar;
    where a config has no value for a group (the baseline's symbols have no measured influence,
    so no influential moments), "n/a" is written at the bar's place."""
    rows = summary[summary.game == game]
    if rows.empty:
        raise ValueError(f"no Figure 5 rows for game {game!r}")
    from ..book.plotting import condition_colour  # matplotlib: only when drawing

    configs = list(dict.fromkeys(rows.config))
    colours = colours or {c: condition_colour(c) for c in configs}
    width = 0.8 / len(configs)
    for ax, measure in zip(axes, MEASURES, strict=True):
        for i, config in enumerate(configs):
            for g, moments in enumerate(MOMENTS):
                x = g + (i - (len(configs) - 1) / 2) * width
                found = rows[(rows.config == config) & (rows.measure == measure) & (rows.moments == moments)]
                if found.empty or pd.isna(found.value.iloc[0]):
                    ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=10, color="dimgrey")
                    continue
                r = found.iloc[0]
                ax.bar(x, r.value, width * 0.92, yerr=0.0 if pd.isna(r["value sd"]) else r["value sd"],
                       color=colours[config], capsize=3, label=sd.CONDITIONS[sd.split_config(config)[1]] if g == 0 else None)
                ax.hlines(r.shuffled, x - width * 0.46, x + width * 0.46, color="black", linewidth=2,
                          label="shuffled (no dependence)" if (i, g) == (0, 0) else None)
        ax.set_xticks(range(len(MOMENTS)), MOMENTS)
        ax.grid(axis="x", visible=False)
        ax.set_title(measure)
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel("speaker consistency (0–1)")
    axes[1].set_ylabel(r"$I(m^k_t;\, a^j_{t+1})$ (nats)")
    axes[2].set_ylabel(r"$I(a^k_t;\, a^j_{t+1})$ (nats)")


def influence_sparsity(episodes: Any) -> pd.DataFrame:
    """How sparse in time each speaker's influence is, per seed: its total influence on the
    others (`exerted`), its mean over the episode, and the fraction of steps above that mean
    (`ssdlib.metrics.fraction_above_mean`; the paper: under 10%). Columns: config, game,
    condition, seed, speaker, steps, mean_influence, max_influence, fraction_above_mean."""
    _require_message_influence(episodes)
    game, condition = sd.split_config(episodes.config)
    given = exerted(episodes.message_influence)  # [S, T, N]
    above = m.fraction_above_mean(given, axis=1)  # [S, N]
    rows = [{"config": episodes.config, "game": game, "condition": condition, "seed": run_seed, "speaker": k,
             "steps": given.shape[1], "mean_influence": given[s, :, k].mean(), "max_influence": given[s, :, k].max(),
             "fraction_above_mean": above[s, k]}
            for s, run_seed in enumerate(episodes.seeds) for k in range(given.shape[2])]
    return pd.DataFrame(rows)


def influenced_and_returns(episodes: Any) -> pd.DataFrame:
    """Per seed and agent: how often it is influenced by the others' symbols (`ssdlib.metrics.
    fraction_influenced` of the influence it receives, `received`: the fraction of steps at
    which it reaches the seed's mean over steps and agents) and its individual extrinsic
    return over the episode. Columns: config, game, condition, seed, agent, fraction_influenced,
    mean_received, return."""
    _require_message_influence(episodes)
    game, condition = sd.split_config(episodes.config)
    got = received(episodes.message_influence)  # [S, T, N]
    returns = np.asarray(episodes.rewards, dtype=np.float64).sum(1)  # [S, N]
    rows = []
    for s, run_seed in enumerate(episodes.seeds):
        often = m.fraction_influenced(got[s])
        rows += [{"config": episodes.config, "game": game, "condition": condition, "seed": run_seed, "agent": j,
                  "fraction_influenced": often[j], "mean_received": got[s, :, j].mean(), "return": returns[s, j]}
                 for j in range(got.shape[2])]
    return pd.DataFrame(rows)


def influence_reward_correlation(table: pd.DataFrame, normalize: bool = True) -> pd.DataFrame:
    """Per game, Spearman's rho between how often each agent is influenced and its individual
    return, over every agent of every influence run (config x seed) in `table` (rows of
    `influenced_and_returns`), beside the paper's. `normalize`: each run's agents are
    standardised first, as the paper "normalized and correlated" (`ssdlib.metrics.
    influenced_reward_correlation`), so the correlation is taken within runs. Columns: game,
    rho, pvalue, agents, runs, paper rho, note (why rho is NaN, when it is)."""
    rows = []
    for game, frame in table.groupby("game", sort=False):
        often = frame.pivot_table(index=["config", "seed"], columns="agent", values="fraction_influenced")
        returns = frame.pivot_table(index=["config", "seed"], columns="agent", values="return").loc[often.index]
        row = {"game": game, "rho": math.nan, "pvalue": math.nan, "agents": int(often.size), "runs": len(often),
               "paper rho": PAPER_CORRELATION[game], "note": ""}
        try:
            result = m.influenced_reward_correlation(often.to_numpy(), returns.to_numpy(), normalize=normalize)
            row.update(rho=result.rho, pvalue=result.pvalue, agents=result.n)
        except ValueError as error:  # too few agents, or no spread in one of the two
            row["note"] = str(error)
        rows.append(row)
    return pd.DataFrame(rows, columns=["game", "rho", "pvalue", "agents", "runs", "paper rho", "note"])
