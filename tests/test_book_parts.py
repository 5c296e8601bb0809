"""Parts every chapter shows: the "made from" box (ssdlib.book.made_from) and tables of runs (ssdlib.book.tables)."""

import json
from pathlib import Path

import pytest

from ssdlib.book.made_from import made_from_html, made_from_rows


def _run(folder: Path, seeds: list[int], steps: int, commit: str, done: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"seeds": seeds}))
    (folder / "provenance.json").write_text(json.dumps({
        "env_steps_per_seed": steps, "device_name": "AMD EPYC (2 cores)", "git_commit": commit, "torch": "2.13.0+cpu"}))
    if done:
        (folder / "done").write_text("")
    return folder


def test_rows_come_from_the_runs_not_the_parameters(tmp_path) -> None:
    runs = {"box_trapped_a3c": _run(tmp_path / "a", [0, 1, 2], 2_000_000, "abc1234"),
            "box_trapped_influence": _run(tmp_path / "b", [0, 1, 2], 2_000_000, "def5678", done=False)}
    rows = made_from_rows("cpu", runs, extra={"replays": "100 per seed"})
    assert rows == {
        "preset": "cpu", "runs": "`box_trapped_a3c`, `box_trapped_influence`", "seeds": "0, 1, 2",
        "env steps per seed": "2,000,000", "finished": "1 of 2", "hardware": "AMD EPYC (2 cores)",
        "torch": "2.13.0+cpu",
        "git commit of the runs": "`abc1234` (box_trapped_a3c); `def5678` (box_trapped_influence)", "replays": "100 per seed",
    }


def test_runs_that_differ_list_each_value(tmp_path) -> None:
    runs = {"x": _run(tmp_path / "x", [0, 1], 1000, "c1"), "y": _run(tmp_path / "y", [0, 1, 2, 3, 4], 3000, "c1")}
    rows = made_from_rows("smoke", runs)
    assert rows["seeds"] == "0, 1 (x); 0, 1, 2, 3, 4 (y)" and rows["env steps per seed"] == "1,000 (x); 3,000 (y)"
    assert rows["git commit of the runs"] == "`c1`" and rows["finished"] == "all"
    z = _run(tmp_path / "z", [0, 1], 1000, "0969db5ceed5ebbb028fd51ea67c05eca55a95b9+dirty")
    assert made_from_rows("smoke", {"x": runs["x"], "z": z})["git commit of the runs"] == "`c1` (x); `0969db5ceed5+dirty` (z)"


def test_box_html_escapes_and_marks_code() -> None:
    page = made_from_html({"preset": "cpu", "runs": "`a<b>`", "note": "x & y"})
    assert page.startswith('<div class="admonition note made-from"><p class="admonition-title">Made from</p>')
    assert "<tr><th>runs</th><td><code>a&lt;b&gt;</code></td></tr>" in page
    assert "x &amp; y" in page and page.endswith("</table></div>")


def test_runs_table_formats_seeds_and_steps() -> None:
    import pandas as pd

    from ssdlib.book.tables import runs_table

    runs = pd.DataFrame([{"config": "cleanup_a3c", "preset": "cpu", "seeds": [0, 1, 2], "env_steps_per_seed": 320000.0,
                          "finished": True, "device_name": "cpu", "git_commit": "abc"}])
    html = runs_table(runs).to_html()
    assert "0, 1, 2" in html and "320,000" in html and "env steps per seed" in html and "3.2e+05" not in html
    with pytest.raises(ValueError, match=r"no column\(s\) \['torch'\]"):
        runs_table(runs, ["config", "torch"])
