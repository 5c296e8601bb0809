"""The paper's results table (Oguntola et al. 2023) and ours, row for row.

The paper reports, for physical deception, the good agents' and the adversary's episode reward
as mean (± spread) for four combinations of first-order (belief bottleneck) and second-order
(ToM reward) per team. The spread's meaning (sd or s.e.) and the number of seeds are unknown;
the returns are consistent with undiscounted 25-step extrinsic returns per good agent (tom.md,
section 2). Ours: each seed's mean return over the last `END_FRACTION` of its training
iterations, then mean ± sd (n - 1) over seeds.
"""

import numpy as np
import pandas as pd

from .config import load_config

END_FRACTION = 0.1  # "the end of training": the last 10% of iterations

# config -> (good mean, good ±, adversary mean, adversary ±) as printed in the paper's table
PAPER = {
    "tom_ppo": (1.889, 0.23, -15.32, 0.51),
    "tom_bottleneck": (2.209, 0.11, -15.17, 0.29),
    "tom_second_order_good": (2.760, 0.44, -17.78, 0.32),
    "tom_second_order_adversary": (1.636, 0.41, -14.01, 0.30),
}
ROWS = list(PAPER)  # the table's order


def end_of_training(metrics: pd.DataFrame, columns: list[str], fraction: float = END_FRACTION) -> pd.DataFrame:
    """Each seed's mean of `columns` over its last `fraction` of iterations (one row per seed)."""
    last = metrics.iteration.max()
    first = last - max(1, round(fraction * last)) + 1
    return metrics[metrics.iteration >= first].groupby("seed")[columns].mean()


def flags(config_name: str) -> dict[str, str]:
    """The table's four Yes/No columns of a config."""
    config = load_config(config_name)
    return {"1st-order (good)": "Yes" if config.good.first_order else "No",
            "1st-order (adv.)": "Yes" if config.adversary.first_order else "No",
            "2nd-order (good)": "Yes" if config.good.second_order else "No",
            "2nd-order (adv.)": "Yes" if config.adversary.second_order else "No"}


def results_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per config of `metrics` (with a `config` column), in the paper's order: the flags,
    our good and adversary returns at the end of training (mean and sd over seeds, and the number
    of seeds) and the paper's (reference)."""
    rows = []
    for config in [c for c in ROWS if c in set(metrics.config)]:
        per_seed = end_of_training(metrics[metrics.config == config], ["good_return", "adversary_return"])
        good, adversary = per_seed.good_return, per_seed.adversary_return
        paper = PAPER[config]
        rows.append({"config": config, **flags(config),
                     "good (ours)": good.mean(), "good sd": good.std(ddof=1) if len(good) > 1 else np.nan,
                     "adversary (ours)": adversary.mean(),
                     "adversary sd": adversary.std(ddof=1) if len(adversary) > 1 else np.nan,
                     "seeds": len(per_seed),
                     "good (paper, reference)": paper[0], "good ± (paper)": paper[1],
                     "adversary (paper, reference)": paper[2], "adversary ± (paper)": paper[3]})
    return pd.DataFrame(rows)


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """The table narrow enough for a page: which teams have each order of beliefs ("none",
    "good", "adversary" or "both") and the returns as "mean ± spread", ours beside the paper's
    (two-level columns: ("good", "ours"), ("good", "paper"), ...)."""
    def cell(mean: float, spread: float, digits: int) -> str:
        nbsp = "\u00a0"  # keeps "mean ± spread" on one line on the page
        return f"{mean:.{digits}f}{nbsp}±{nbsp}{spread:.{digits}f}" if np.isfinite(spread) else f"{mean:.{digits}f}"

    def teams(order: str) -> list[str]:
        names = {("No", "No"): "none", ("Yes", "No"): "good", ("No", "Yes"): "adversary", ("Yes", "Yes"): "both"}
        return [names[pair] for pair in zip(table[f"{order} (good)"], table[f"{order} (adv.)"])]

    columns = pd.MultiIndex.from_tuples([("beliefs", "1st"), ("beliefs", "2nd"), ("good", "ours"),
                                         ("good", "paper"), ("adversary", "ours"), ("adversary", "paper")])
    return pd.DataFrame(list(zip(
        teams("1st-order"), teams("2nd-order"),
        [cell(m, s, 3) for m, s in zip(table["good (ours)"], table["good sd"])],
        [cell(m, s, 3) for m, s in zip(table["good (paper, reference)"], table["good ± (paper)"])],
        [cell(m, s, 2) for m, s in zip(table["adversary (ours)"], table["adversary sd"])],
        [cell(m, s, 2) for m, s in zip(table["adversary (paper, reference)"], table["adversary ± (paper)"])],
    )), columns=columns)
