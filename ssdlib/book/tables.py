"""How the book shows tables of runs: each column formatted for a reader (seeds as a list,
steps with thousands separators), with no index column."""

import pandas as pd
from pandas.io.formats.style import Styler

RUN_COLUMNS = ["config", "preset", "seeds", "env_steps_per_seed", "finished", "device_name", "git_commit"]
RUN_HEADERS = {"env_steps_per_seed": "env steps per seed", "device_name": "hardware", "git_commit": "git commit"}


def runs_table(runs: pd.DataFrame, columns: list[str] | None = None) -> Styler:
    """A styled table of runs (rows from `ssdlib.book.results.run_info` plus config and
    preset), showing `columns` (default RUN_COLUMNS) under readable headers."""
    columns = RUN_COLUMNS if columns is None else columns
    missing = [c for c in columns if c not in runs.columns]
    if missing:
        raise ValueError(f"no column(s) {missing} in the runs table; have {list(runs.columns)}")
    shown = runs[columns].copy()
    if "seeds" in shown:
        shown["seeds"] = shown["seeds"].map(lambda seeds: ", ".join(str(s) for s in seeds))
    if "env_steps_per_seed" in shown:
        shown["env_steps_per_seed"] = shown["env_steps_per_seed"].map(lambda n: "unknown" if pd.isna(n) else f"{int(n):,}")
    return shown.rename(columns=RUN_HEADERS).style.hide(axis="index")
