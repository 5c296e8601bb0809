"""The "made from" box at the top of each chapter: what produced the numbers on the page.

It replaces the notebook's parameters cells on the rendered page: the preset, seeds, env steps
per seed, hardware, torch and git commit are read from the run folders the chapter shows
(their config.json and provenance.json), never from the notebook's parameters, so the box
states what the runs are, not what was asked for.
"""

from collections.abc import Mapping
from html import escape
from pathlib import Path

from .results import run_info


def _one_or_each(values: Mapping[str, object]) -> str:
    """One value when every run agrees, else each distinct value followed by its runs
    ("A (x, y); B (z)"), in first-seen order."""
    groups: dict[str, list[str]] = {}
    for config, value in values.items():
        groups.setdefault(str(value), []).append(config)
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(f"{value} ({', '.join(configs)})" for value, configs in groups.items())


def _short_commit(commit: str | None) -> str:
    """A commit as its first 12 hex digits, keeping the "+dirty" mark of a run trained from
    uncommitted code."""
    if not commit:
        return "unknown"
    sha, dirty = commit.removesuffix("+dirty"), commit.endswith("+dirty")
    return f"`{sha[:12]}{'+dirty' if dirty else ''}`"


def made_from_rows(preset: str, runs: Mapping[str, str | Path] | None = None,
                   extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The box's rows, label -> text: preset, then (when `runs`, config -> run folder, are
    given) runs, seeds, env steps per seed, finished, hardware, torch and git commit of those
    runs, then `extra` rows (e.g. what a chapter computes without runs)."""
    rows = {"preset": preset}
    if runs:
        infos = {config: run_info(folder) for config, folder in runs.items()}
        def each(field: str, show=str) -> str:
            return _one_or_each({config: show(info[field]) for config, info in infos.items()})

        rows["runs"] = ", ".join(f"`{config}`" for config in infos)
        rows["seeds"] = each("seeds", lambda seeds: ", ".join(map(str, seeds)))
        rows["env steps per seed"] = each("env_steps_per_seed", lambda n: "unknown" if n is None else f"{int(n):,}")
        finished = [info["finished"] for info in infos.values()]
        rows["finished"] = "all" if all(finished) else f"{sum(finished)} of {len(finished)}"
        rows["hardware"] = each("device_name")
        rows["torch"] = each("torch")
        rows["git commit of the runs"] = each("git_commit", _short_commit)
    rows.update(extra or {})
    return rows


def made_from_html(rows: Mapping[str, str]) -> str:
    """The rows as an admonition box (HTML, so that the book and JupyterLab both render it;
    `code` spans in backticks become <code>)."""
    def cell(text: str) -> str:
        parts = escape(str(text)).split("`")
        return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))

    body = "".join(f"<tr><th>{escape(label)}</th><td>{cell(text)}</td></tr>" for label, text in rows.items())
    return ('<div class="admonition note made-from"><p class="admonition-title">Made from</p>'
            f'<table class="made-from-table">{body}</table></div>')


def made_from(preset: str, runs: Mapping[str, str | Path] | None = None,
              extra: Mapping[str, str] | None = None):
    """An IPython HTML object of the box, for a chapter's first output."""
    from IPython.display import HTML

    return HTML(made_from_html(made_from_rows(preset, runs, extra)))
