"""Figure 17: is influence ahead of the baselines for more than one lucky setting?

The paper's supplement (Figure 17) trains every condition over a hyperparameter sweep, takes
each condition's five best settings by final collective reward and shows them x 5 seeds. Ours
does the same with the packaged sweeps `robustness_<game>_<condition>` (ssdlib/sweeps/): per
game, A3C, visible actions and basic influence, each around its own Table 1 setting (initial
learning rate halved, kept and doubled; entropy regularisation kept and doubled). A sweep's
runs live in RESULTS/sweeps/robustness_<config>/<preset>/run-NNN, as `python -m ssdlib.sweep`
writes them; the book trains only the smoke preset's sweeps itself (in this process, without
Ray), and shows of a longer preset's sweeps the runs that have finished.
"""

import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..runs import read_metrics
from ..sweep import SWEEP_DIR, Sweep, prepare, run_row, sweep_from_dict, train_run
from . import social_dilemmas as sd

CONDITIONS = sd.EXPERIMENT_I  # a3c, visible actions, basic influence
TOP = 5  # settings shown per condition, as in the paper


def sweep_name(config: str) -> str:
    """The packaged robustness sweep of a condition's config ("cleanup_influence")."""
    return f"robustness_{config}"


def sweep_folder(results_dir: str | Path, config: str, preset: str) -> Path:
    return Path(results_dir) / "sweeps" / sweep_name(config) / preset


def robustness_sweep(config: str, preset: str, seeds: list[int], max_settings: int | None = None) -> Sweep:
    """The packaged sweep of `config` on `preset` and `seeds` (its grid as packaged; only its
    first `max_settings` settings when given, for a quick smoke check of the code path)."""
    path = SWEEP_DIR / f"{sweep_name(config)}.toml"
    if not path.is_file():
        raise ValueError(f"no robustness sweep for config {config!r}: {str(path)!r} does not exist")
    spec = tomllib.loads(path.read_text()) | {"preset": preset, "seeds": list(seeds)}
    sweep = sweep_from_dict(spec, path)
    if max_settings is not None:
        if max_settings < 1:
            raise ValueError(f"max_settings must be at least 1, got {max_settings}")
        sweep = replace(sweep, runs=sweep.runs[:max_settings])
    return sweep


def sweep_summary(config: str, preset: str, seeds: list[int], results_dir: str | Path = "results",
                  train: bool = False, max_settings: int | None = None) -> pd.DataFrame:
    """One row per setting of the robustness sweep of `config` (`sweep.run_row`: its overrides,
    status "done" or "missing" (a run still training is missing, with no steps), final
    collective reward); with `train`, unfinished runs are
    trained (or resumed) here first, one after another, as `python -m ssdlib.sweep` would."""
    sweep = robustness_sweep(config, preset, seeds, max_settings)
    out = sweep_folder(results_dir, config, preset)
    if train:
        out.mkdir(parents=True, exist_ok=True)
        prepare(sweep, out)
        for run in sweep.runs:
            if not (out / run.name / "done").is_file():
                result = train_run(str(out / run.name), sweep.preset, sweep.seeds, 1, 0)
                if not result["ok"]:
                    raise RuntimeError(f"{config} {run.name} failed: {result['error']} (log: {out / run.name / 'log.txt'})")
    rows = [run_row(run, out / run.name, "done" if (out / run.name / "done").is_file() else "missing")
            for run in sweep.runs]
    summary = pd.DataFrame(rows).assign(config=config, preset=preset,
                                        table1=[is_table1(sweep, r.overrides) for r in sweep.runs])
    # a run still training is shown as not started: its progress is this machine's, not the results'
    summary.loc[summary.status != "done", ["env_steps_per_seed", "wall_time_s"]] = (0, np.nan)
    return summary


def is_table1(sweep: Sweep, overrides: dict) -> bool:
    """Whether a setting is the condition's own (Table 1) setting."""
    base = sweep.base.to_dict()
    for field, value in overrides.items():
        node = base
        for key in field.split("."):
            node = node[key]
        if node != value:
            return False
    return True


def rank_settings(summary: pd.DataFrame, top: int = TOP) -> pd.DataFrame:
    """Each config's finished settings, best final collective reward first, with their rank
    and whether they are among its `top`; configs keep the summary's order."""
    done = summary[summary.status == "done"].copy()
    order = {config: i for i, config in enumerate(pd.unique(summary.config))}
    done = done.sort_values(["config", "final_collective_reward"], ascending=[True, False], kind="stable",
                            key=lambda column: column.map(order) if column.name == "config" else column)
    done["rank"] = done.groupby("config").cumcount() + 1
    done["top"] = done["rank"] <= top
    return done


def top_metrics(ranked: pd.DataFrame) -> pd.DataFrame:
    """The per-episode metrics of every top setting, one replicate per (setting, seed): column
    `seed` becomes "run-NNN/seed" so `sd.learning_curves` pools settings x seeds."""
    parts = []
    for row in ranked[ranked.top].itertuples():
        frame = read_metrics(row.folder)
        parts.append(frame.assign(config=row.config, setting=row.run, seed=[f"{row.run}/{s}" for s in frame.seed]))
    if not parts:
        raise ValueError("no finished setting to show")
    return pd.concat(parts, ignore_index=True)


def final_by_setting(ranked: pd.DataFrame) -> pd.DataFrame:
    """Per config and top setting: each seed's final collective reward (`sd.final_rewards`,
    as Table 4 computes it), so the band over settings x seeds can be summarised."""
    frames = []
    for row in ranked[ranked.top].itertuples():
        finals = sd.final_rewards(read_metrics(row.folder).assign(config=row.config))
        frames.append(finals[["config", "seed", "collective_reward"]].assign(setting=row.run))
    return pd.concat(frames, ignore_index=True)


def robustness_table(finals: pd.DataFrame) -> pd.DataFrame:
    """Per config: mean ± sd of the final collective reward over its top settings x seeds,
    the number of settings and replicates, and the share of replicates above A3C's mean."""
    rows = []
    for config, frame in finals.groupby("config", sort=False):
        game, condition = sd.split_config(config)
        a3c = finals[finals.config == sd.config_name(game, "a3c")].collective_reward
        rows.append({"game": game, "condition": CONDITIONS.get(condition, condition), "config": config,
                     "settings": frame.setting.nunique(), "replicates": len(frame),
                     "mean": frame.collective_reward.mean(), "sd": frame.collective_reward.std(ddof=1),
                     "above A3C's mean": float(np.mean(frame.collective_reward > a3c.mean())) if len(a3c) else np.nan})
    return pd.DataFrame(rows)
