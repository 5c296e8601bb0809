"""Experiments I and III and the baselines in Cleanup and Harvest: what the book's curves and
tables compute from the per-episode metrics of finished runs (`ssdlib.book.results.load_metrics`).

- `learning_curves`: the paper's error bars, a 99.5% confidence band over seeds within a
  sliding window (Figure 1, Figure 7, Figure 15, Figure 16).
- `final_rewards` / `table4`: the final collective reward of supplement Table 4, per seed and
  per condition, after the paper's Harvest filter; R·(1−G) beside it (Figure 16).
- Experiment III's diagnostics (`agent_mean`, `final_summary`, `listening_table`,
  `chance_accuracy`): how well each agent's model of the others predicts them, whether the
  policies depend on the others' actions at all, and how much influence the agents exert.

The paper's curves have hundreds of points per seed; a short preset logs one point per
episode (10 on the cpu preset), so the window and the "final" stretch scale with the number
of points (`smoothing_window`, `final_window`) and every table says how many points it used.
"""

import math
import re

import numpy as np
import pandas as pd

from .. import metrics as m

GAMES = ("cleanup", "harvest")
EXPERIMENT_I = {"a3c": "A3C", "visible": "visible actions", "influence": "basic influence"}
BASELINES = {"prosocial": "prosocial (η = 0.85)", "inequity_aversion": "inequity aversion"}
EXPERIMENT_II = {"a3c": "A3C", "comm_baseline": "communication baseline", "comm_influence": "influential communication"}
EXPERIMENT_III = {"a3c": "A3C", "moa_baseline": "MOA baseline", "moa_influence": "influence MOA"}
CONDITIONS = EXPERIMENT_I | EXPERIMENT_II | BASELINES | EXPERIMENT_III
# Conditions whose policy LSTM sees the other agents' previous actions: the ones in which the
# "listening" diagnostic (the action-specific input weights) is recorded.
LISTENING_CONDITIONS = ("visible", "influence", "moa_baseline", "moa_influence")
PAPER_FINAL_POINTS = 50  # Table 4: "the last 50 agent steps" of the paper's curves
PAPER_WINDOW = 200  # the paper's sliding window for its error bars

# Supplement Table 4, the paper's final collective reward (references only; None: not reported)
PAPER_TABLE4: dict[str, dict[str, float | None]] = {
    "cleanup": {"a3c": 89, "visible": None, "influence": 190, "comm_baseline": None, "comm_influence": 166,
                "prosocial": None, "inequity_aversion": 275, "moa_baseline": None, "moa_influence": 392},
    "harvest": {"a3c": 485, "visible": None, "influence": 1073, "comm_baseline": None, "comm_influence": 951,
                "prosocial": None, "inequity_aversion": 750, "moa_baseline": None, "moa_influence": 588},
}


def config_name(game: str, condition: str) -> str:
    """The packaged config of `condition` in `game`, e.g. ('cleanup', 'influence') -> 'cleanup_influence'."""
    if game not in GAMES:
        raise ValueError(f"unknown game {game!r}; choose from {list(GAMES)}")
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; choose from {list(CONDITIONS)}")
    return f"{game}_{condition}"


def split_config(config: str) -> tuple[str, str]:
    """'harvest_inequity_aversion' -> ('harvest', 'inequity_aversion')."""
    game, _, condition = config.partition("_")
    config_name(game, condition)  # validates
    return game, condition


def smoothing_window(points: int) -> int:
    """Points per sliding window: the paper's 200 when curves are long, a tenth of the curve
    (at least 1) on short presets, so the band is smoothed but not flattened."""
    return max(1, min(PAPER_WINDOW, points // 10))


def final_window(points: int) -> int:
    """Points averaged for the final reward: the paper's last 50, or the last fifth of a
    shorter curve (at least 1), so early random-policy episodes never count as final."""
    return max(1, min(PAPER_FINAL_POINTS, points // 5))


def seed_matrix(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """One config's `column` as [seeds x env_steps] (only the points every seed reached)."""
    table = frame.pivot_table(index="seed", columns="env_steps", values=column, aggfunc="mean")
    return table.dropna(axis=1)


def learning_curves(metrics: pd.DataFrame, column: str = "collective_reward", confidence: float = 0.995,
                    window: int | None = None) -> pd.DataFrame:
    """Per config and env step: the mean over seeds of `column` and its confidence band
    (`metrics.sliding_window_ci` over seeds; window from `smoothing_window` unless given).
    Columns: config, env_steps, mean, lower, upper, seeds, window."""
    if column not in metrics.columns:
        raise ValueError(f"no column {column!r} in the metrics; have {sorted(metrics.columns)}")
    rows = []
    for config, frame in metrics.groupby("config", sort=False):
        matrix = seed_matrix(frame, column)
        w = window or smoothing_window(matrix.shape[1])
        band = m.sliding_window_ci(matrix.to_numpy(), window=w, confidence=confidence)
        rows.append(pd.DataFrame({"config": config, "env_steps": matrix.columns.to_numpy(), "mean": band.mean,
                                  "lower": band.lower, "upper": band.upper, "seeds": len(matrix), "window": w}))
    return pd.concat(rows, ignore_index=True)


def plot_curves(ax, curves: pd.DataFrame, labels: dict[str, str], colours: dict[str, str],
                ylabel: str = "collective reward", replicates: str = "seeds") -> None:
    """Draw each config's mean curve and its band, in the order of `labels`; each label ends
    with how many `replicates` (seeds, or settings x seeds) the band is over."""
    for config, label in labels.items():
        c = curves[curves.config == config]
        if c.empty:
            raise ValueError(f"no curve for config {config!r}; have {sorted(curves.config.unique())}")
        seeds = int(c.seeds.iloc[0])
        ax.plot(c.env_steps, c["mean"], color=colours[config], label=f"{label} ({seeds} {replicates})")
        ax.fill_between(c.env_steps, c.lower, c.upper, color=colours[config], alpha=0.18, linewidth=0)
    ax.set_xlabel("env steps per seed")
    ax.set_ylabel(ylabel)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))


def final_episodes(metrics: pd.DataFrame) -> pd.DataFrame:
    """The rows of each config's final points (the last `final_window` env steps logged),
    with a column `points` saying how many points that is."""
    parts = []
    for config, frame in metrics.groupby("config", sort=False):
        steps = np.sort(frame.env_steps.unique())
        points = final_window(len(steps))
        parts.append(frame[frame.env_steps.isin(steps[-points:])].assign(points=points))
    return pd.concat(parts, ignore_index=True)


def final_rewards(metrics: pd.DataFrame, min_apples: float = 1.0) -> pd.DataFrame:
    """Per config and seed, averaged over the final points (`final_window`): collective
    reward, R·(1−G), equality, each agent's apples, and whether the seed passes the paper's
    Harvest filter (every agent collects ≥ `min_apples` apples per episode; Cleanup seeds
    always pass). Columns: config, game, condition, seed, points, collective_reward,
    collective_times_equality, equality, min_agent_apples, kept."""
    apple_columns = sorted(c for c in metrics.columns if c.startswith("apples_"))
    rows = []
    for config, frame in final_episodes(metrics).groupby("config", sort=False):
        game, condition = split_config(config)
        points = int(frame.points.iloc[0])
        table = frame.groupby("seed")[["collective_reward", "collective_times_equality", "equality",
                                       *apple_columns]].mean()
        apples = table[apple_columns].to_numpy()
        kept = m.harvest_learned_filter(apples, min_apples) if game == "harvest" else np.ones(len(table), bool)
        rows.append(pd.DataFrame({
            "config": config, "game": game, "condition": condition, "seed": table.index.to_numpy(),
            "points": points, "collective_reward": table.collective_reward.to_numpy(),
            "collective_times_equality": table.collective_times_equality.to_numpy(),
            "equality": table.equality.to_numpy(), "min_agent_apples": apples.min(1), "kept": kept,
        }))
    return pd.concat(rows, ignore_index=True)


def table4(finals: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Supplement Table 4, ours beside the paper's: one row per config (in the order of
    `finals`) with the mean and
    standard deviation over the kept seeds of the final collective reward, R·(1−G) over all
    seeds (no filter), and what produced it (preset, steps per seed, seeds kept of trained,
    final points, hardware). `runs`: one row per config with columns config, preset,
    env_steps_per_seed, device_name (e.g. from `ssdlib.book.results.run_info`)."""
    missing = sorted(set(finals.config) - set(runs.config))
    if missing:
        raise ValueError(f"no run information for configs {missing}")
    rows = []
    for config, f in finals.groupby("config", sort=False):
        game, condition = split_config(config)
        run = runs.set_index("config").loc[config]
        kept = f[f.kept]
        rows.append({
            "config": config,
            "game": game,
            "condition": CONDITIONS[condition],
            "ours": kept.collective_reward.mean() if len(kept) else math.nan,
            "ours sd": kept.collective_reward.std(ddof=1) if len(kept) > 1 else math.nan,
            "ours R(1-G)": f.collective_times_equality.mean(),
            "paper": PAPER_TABLE4[game][condition],
            "seeds kept": f"{len(kept)}/{len(f)}",
            "preset": run.preset,
            "steps per seed": int(run.env_steps_per_seed),
            "final points": int(f.points.iloc[0]),
            "hardware": run.device_name,
        })
    return pd.DataFrame(rows)


def format_table4(table: pd.DataFrame) -> pd.DataFrame:
    """Table 4 as text cells for the book: 'mean ± sd' for ours, '–' where the paper has none."""
    def number(x: float) -> str:
        return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.0f}"

    out = table.copy()
    out["ours"] = [f"{number(a)} ± {number(b)}" if not math.isnan(b) else number(a)
                   for a, b in zip(table["ours"], table["ours sd"], strict=True)]
    out["ours R(1-G)"] = table["ours R(1-G)"].map(number)
    out["paper"] = table["paper"].map(number)
    out["steps per seed"] = table["steps per seed"].map(lambda s: f"{s:.2g}")
    return out.drop(columns=["ours sd"])


def table4_book(table: pd.DataFrame) -> pd.DataFrame:
    """Table 4 as the results chapter prints it: one row per model, per game our cell
    ('mean ± sd (preset, steps per seed, seeds kept/trained)') beside the paper's number;
    models in no row of `table` are left out."""
    def cell(row: pd.Series) -> str:
        sd_text = "" if math.isnan(row["ours sd"]) else f" ± {row['ours sd']:,.0f}"
        return (f"{row['ours']:,.0f}{sd_text} ({row['preset']}, {row['steps per seed']:.2g} steps, "
                f"{row['seeds kept']} seeds)")

    def paper(value: float | None) -> str:
        return "–" if value is None else f"{value:,.0f}"

    models = [label for label in CONDITIONS.values() if label in set(table.condition)]
    rows = []
    for label in models:
        row = {"model": label}
        for game in GAMES:
            found = table[(table.game == game) & (table.condition == label)]
            condition = next(k for k, v in CONDITIONS.items() if v == label)
            row[f"{game.capitalize()}, ours"] = cell(found.iloc[0]) if len(found) else "not run"
            row[f"{game.capitalize()}, paper"] = paper(PAPER_TABLE4[game][condition])
        rows.append(row)
    return pd.DataFrame(rows)


def plot_table4(ax, table: pd.DataFrame, game: str, colours: dict[str, str]) -> None:
    """One game's Table 4 as bars: ours (mean ± sd over kept seeds), one colour and legend
    entry per condition, and the paper's number as a black diamond where it reports one."""
    rows = table[table.game == game].reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"no Table 4 rows for game {game!r}")
    x = np.arange(len(rows))
    for i, row in rows.iterrows():  # one bar per condition, so the legend has one entry (colour) each
        ax.bar(x[i], row["ours"], yerr=0.0 if pd.isna(row["ours sd"]) else row["ours sd"], color=colours[row.config],
               capsize=3, label=row.condition)
    paper = rows["paper"].astype(float)
    ax.scatter(x[paper.notna()], paper[paper.notna()], marker="D", color="black", zorder=3, label="paper (reference)")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xticks(x, rows.condition, rotation=25, ha="right")
    ax.set_ylabel("final collective reward")
    ax.set_title(game.capitalize())


def final_band_order(curves: pd.DataFrame, first: str, second: str) -> str:
    """How `first`'s confidence band at its last point lies against `second`'s: "above",
    "below" or "overlapping" (the runs cannot tell the two apart at this length)."""
    ends = {}
    for config in (first, second):
        c = curves[curves.config == config]
        if c.empty:
            raise ValueError(f"no curve for config {config!r}; have {sorted(curves.config.unique())}")
        ends[config] = c.iloc[-1]
    a, b = ends[first], ends[second]
    if a.lower > b.upper:
        return "above"
    if a.upper < b.lower:
        return "below"
    return "overlapping"


# ---------------------------------------------------------------------------- conditions
DIVERGENCE_NAMES = {"jsd": "Jensen-Shannon", "kl": "KL", "pmi": "PMI (one sample of the KL)"}


def condition_settings(configs: list[str]) -> pd.DataFrame:
    """What each condition's agents see and are paid, read from its config file: the number
    of agents that act first (influencers, or first movers where the reward ignores
    influence), which actions the others see, the influence divergence and weight β, whether
    influencees are paid the influence they receive, and the entropy coefficient. One row per
    config, so a chapter states the settings of the runs it shows, game by game."""
    from ..training.conditions.config import load_config

    rows = []
    for config in configs:
        c = load_config(config)
        k = c.model.influencers
        influence = c.reward.scheme == "influence"
        if not c.model.action_inputs:
            sees = "no other agent's actions"
        elif k:
            first, whose = (f"agents 0–{k - 1} act", "their") if k > 1 else ("agent 0 acts", "its")
            sees = (f"{first} first; the others see {whose} actions of the same step "
                    "and every other action of the previous step")
        else:
            sees = "every other agent's actions of the previous step"
        rows.append({
            "config": config, "game": split_config(config)[0].capitalize(),
            "condition": CONDITIONS.get(split_config(config)[1], split_config(config)[1]),
            "acting first": k, "actions seen": sees,
            "influence source": c.reward.influence_source if influence else "–",
            "divergence": DIVERGENCE_NAMES[c.reward.divergence] if influence else "–",
            "β": c.reward.influence_weight if influence else 0.0,
            "influencees paid": ("yes" if c.reward.influencee_reward else "no") if influence and k else "–",
            "entropy coef.": c.optim.entropy_coef,
        })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- Experiment III
LISTENING_TOLERANCE = 0.10  # |listening / listening_init − 1| below this: still at its initial value


def config_label(config: str) -> str:
    """'harvest_moa_influence' -> 'Harvest, influence MOA'."""
    game, condition = split_config(config)
    return f"{game.capitalize()}, {CONDITIONS[condition]}"


def agent_mean(metrics: pd.DataFrame, prefix: str) -> pd.Series:
    """Per row, the mean over agents of the per-agent columns PREFIX_0, PREFIX_1, ... (only
    those columns, so "influence" does not pick up "influence_mean_0"), skipping agents for
    which the run records none (e.g. influencees' `influence_mean_k`); NaN where no agent has
    a value."""
    pattern = re.compile(rf"{re.escape(prefix)}_(\d+)")
    columns = sorted((c for c in metrics.columns if pattern.fullmatch(c)), key=lambda c: int(pattern.fullmatch(c)[1]))
    if not columns:
        raise ValueError(f"no per-agent columns {prefix}_k in the metrics; have {sorted(metrics.columns)}")
    return metrics[columns].mean(axis=1, skipna=True)


def configs_with(metrics: pd.DataFrame, column: str) -> list[str]:
    """The configs (in the order of `metrics`) whose runs record `column` (some value not NaN):
    runs trained before a diagnostic existed, or without the part it measures, have none."""
    if column not in metrics.columns:
        return []
    recorded = metrics.groupby("config", sort=False)[column].apply(lambda x: bool(x.notna().any()))
    return [c for c, ok in recorded.items() if ok]


def final_summary(metrics: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per config: each of `columns` averaged over the final points of each seed (as
    `final_rewards` does), then the mean and standard deviation over seeds ("COLUMN sd").
    Columns: config, game, condition, seeds, points, then COLUMN and COLUMN sd per column."""
    missing = [c for c in columns if c not in metrics.columns]
    if missing:
        raise ValueError(f"no column(s) {missing} in the metrics; have {sorted(metrics.columns)}")
    rows = []
    for config, frame in final_episodes(metrics).groupby("config", sort=False):
        game, condition = split_config(config)
        per_seed = frame.groupby("seed")[columns].mean()
        row = {"config": config, "game": game, "condition": condition, "seeds": len(per_seed),
               "points": int(frame.points.iloc[0])}
        for column in columns:
            row[column] = per_seed[column].mean()
            row[f"{column} sd"] = per_seed[column].std(ddof=1) if per_seed[column].notna().sum() > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def listening_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per config that records the listening diagnostic, at the last point every seed logged:
    the mean over seeds of `listening` (the norm of the policy LSTM's action-specific input
    weights for the other agents' actions) and of `listening_init` (the same at
    initialisation), and the relative change listening / listening_init − 1 (mean and sd over
    seeds of each seed's change). Columns: config, game, condition, seeds, env_steps,
    listening, listening_init, change, change sd."""
    rows = []
    for config in configs_with(metrics, "listening"):
        game, condition = split_config(config)
        frame = metrics[(metrics.config == config) & metrics.listening.notna()]
        last = seed_matrix(frame, "listening").columns.max()
        at_end = frame[frame.env_steps == last].groupby("seed")[["listening", "listening_init"]].mean()
        change = at_end.listening / at_end.listening_init - 1.0
        rows.append({"config": config, "game": game, "condition": condition, "seeds": len(at_end),
                     "env_steps": int(last), "listening": at_end.listening.mean(),
                     "listening_init": at_end.listening_init.mean(), "change": change.mean(),
                     "change sd": change.std(ddof=1) if len(change) > 1 else math.nan})
    return pd.DataFrame(rows, columns=["config", "game", "condition", "seeds", "env_steps", "listening",
                                       "listening_init", "change", "change sd"])


def listening_state(change: float, tolerance: float = LISTENING_TOLERANCE) -> str:
    """What a relative change of the listening norm says: "grown" (the policies' dependence on
    the others' actions has grown beyond the random one they started with), "shrunk" (they
    are learning to ignore those actions) or "initial" (within `tolerance` of its initial
    value: the dependence is still the random one of initialisation)."""
    if math.isnan(change):
        raise ValueError("the listening change is NaN: no listening diagnostic recorded")
    if change > tolerance:
        return "grown"
    if change < -tolerance:
        return "shrunk"
    return "initial"


def chance_accuracy(game: str) -> float:
    """1/A: the top-1 accuracy of a uniform guess among the game's A actions, with A read
    from the environment (the level an MOA must beat to predict anything)."""
    from ..envs import make_env  # the env (torch) is only needed here

    if game not in GAMES:
        raise ValueError(f"unknown game {game!r}; choose from {list(GAMES)}")
    return 1.0 / make_env(game, num_envs=1).num_actions
