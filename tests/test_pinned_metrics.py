"""The restructured trainer reproduces the old trainer's episode metrics exactly.

`tests/data/pinned_smoke_metrics.json` holds, for every packaged config of the trainer before
the training-core restructuring, the episode rows of a smoke-preset run with seeds [0, 1]
("before"), and for the influence configs the influence columns as that trainer computes
them in float64 ("float64_influence"), which replace the "before" values of those columns.
Every pinned column but wall_time must come out identical (NaN equal to NaN), row for row,
except those influence columns: the new trainer also forms the counterfactual logits and
the divergences so that no influence is exactly zero (`ssdlib.influence.marginal_log_ratio`,
`influence_sources.counterfactual_logits`), which moves the last digits; they must agree to
INFLUENCE_RTOL. The new trainer's extra columns (losses, sparsity, listening) are not pinned.
"""

import json
import math
from pathlib import Path

import pytest

from ssdlib.training.conditions import config_names, get_preset, load_config
from ssdlib.training.trainer import Trainer

PINNED = json.loads((Path(__file__).parent / "data" / "pinned_smoke_metrics.json").read_text())
SEEDS = [0, 1]
UNPINNED = {"wall_time"}
INFLUENCE_RTOL = 1e-4  # measured: 1.4e-7 (JSD, KL), 4.2e-5 (Harvest's episode sums of signed PMI)


def same(want, got) -> bool:
    """Exact equality, NaN equal to NaN."""
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return got == want


def describe(mismatches: list[tuple]) -> str:
    """The columns that differ, each with its largest relative difference."""
    worst: dict[str, float] = {}
    for _, column, want, got in mismatches:
        try:
            rel = abs(got - want) / abs(want) if want else math.inf
        except TypeError:  # missing
            rel = math.inf
        worst[column] = max(worst.get(column, 0.0), rel if rel == rel else math.inf)
    return ", ".join(f"{column} (max rel. diff {rel:.2g})" for column, rel in worst.items())


def close(want: float, got) -> bool:
    return isinstance(got, float) and abs(got - want) <= INFLUENCE_RTOL * abs(want)


def expected_rows(name: str) -> list[dict]:
    """The pinned rows of config `name`, its float64 influence columns swapped in."""
    before = PINNED["before"][name]
    float64 = PINNED["float64_influence"].get(name)
    if float64 is None:
        return before
    assert len(float64) == len(before), f"{name}: float64 influence pins {len(float64)} rows, 'before' {len(before)}"
    for row, columns in zip(before, float64):
        assert set(columns) <= set(row), f"{name}: float64 influence columns {sorted(set(columns) - set(row))} are not pinned"
    return [{**row, **columns} for row, columns in zip(before, float64)]


def test_pinned_configs_are_packaged():
    assert set(PINNED["float64_influence"]) <= set(PINNED["before"])
    assert set(PINNED["before"]) <= set(config_names())


@pytest.mark.parametrize("name", sorted(PINNED["before"]))
def test_smoke_metrics_match_the_pinned_ones(name):
    config = load_config(name)
    preset = get_preset("smoke", config.env)
    trainer = Trainer(config, preset, SEEDS, "cpu")
    while trainer.env_steps < preset.total_steps:
        trainer.train_iteration()
    expected = expected_rows(name)
    float64 = set().union(*PINNED["float64_influence"].get(name, [{}]))
    assert len(trainer.episodes) == len(expected)
    mismatches = []
    for i, (want_row, got_row) in enumerate(zip(expected, trainer.episodes)):
        for column, want in want_row.items():
            if column in UNPINNED:
                continue
            if column not in got_row:
                mismatches.append((i, column, want, "missing"))
            elif column in float64 and close(want, got_row[column]):
                continue
            elif not same(want, got_row[column]):
                mismatches.append((i, column, want, got_row[column]))
    assert not mismatches, (f"{len(mismatches)} pinned values differ in columns {describe(mismatches)}; "
                            f"(row, column, pinned, now): {mismatches[:10]}")

