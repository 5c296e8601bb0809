"""Rebuild the book: run every notebook with papermill, then build the HTML with Jupyter Book.

    python -m ssdlib.book.reproduce                       # the default preset, the whole book
    python -m ssdlib.book.reproduce --preset smoke --only environments

1. Each `notebooks/NAME.ipynb` is executed by papermill (kernel `python3`, working directory
   the current one) with the preset's parameters (`notebook_parameters`: preset, seeds,
   num_games, device, results_dir, train). The executed copy is written atomically to
   `BOOK/generated/NAME.ipynb`, the file the book's chapter points at; a notebook that fails
   leaves its partly executed copy in `BOOK/_build/failed/NAME.ipynb` and the previous
   chapter untouched. A notebook saves its figures to `RESULTS/figures/NAME/*.png` and its
   tables to `RESULTS/tables/NAME/*.csv` (see `ssdlib.book.plotting`).
2. Each execution is recorded (parameters, time, git commit, versions, device) in
   `BOOK/generated/provenance.json`, and as a table in `BOOK/generated/provenance_table.md`
   that the book's provenance page includes.
3. MathJax is vendored (`ensure_mathjax`): npm installs the pinned MathJax once into a
   git-ignored folder (`build/npm` by default), and the parts the pages load are copied to
   `BOOK/_vendor/mathjax/`, which Sphinx copies to the site as `mathjax/` (html_extra_path);
   the pages load it from there, so equations render offline and nothing comes from a CDN.
4. `jupyter-book build BOOK --all --warningiserror --keep-going` (jupyter-book 1.x), which does
   not execute notebooks again (execute_notebooks: off). The last line printed is the absolute
   path of the book's index page.

Presets: `smoke` runs in seconds (tests), `cpu` is the default (the book's committed figures),
`gpu` and `paper` use a CUDA device. On every preset, finished runs are reused
(`ssdlib.book.results.ensure_run`): a notebook trains a run only when it is missing, resumes one
that is unfinished, and retrains one whose config or preset changed since. `--retrain CONFIG`
discards that config's run on the preset first (on request); `--reuse-only` makes a missing
or stale run an error instead of training it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..training.conditions.presets import PRESETS

DEFAULT_PRESET = "cpu"
KERNEL = "python3"
MATHJAX_VERSION = "3.2.2"
# What the pages need from MathJax's es5/ folder: the combined TeX-to-HTML component, the TeX
# extensions it loads on demand (autoload), the fonts of its output, and the components its
# right-click menu loads (accessibility, speech rules).
MATHJAX_PARTS = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y", "sre")

SEEDS = [0, 1, 2, 3, 4]  # the paper reports 5 seeds per condition
PRESET_PARAMETERS: dict[str, dict[str, Any]] = {
    "smoke": {"seeds": [0, 1], "num_games": PRESETS["smoke"].num_envs, "device": "cpu"},
    "cpu": {"seeds": SEEDS, "num_games": PRESETS["cpu"].num_envs, "device": "cpu"},
    "gpu": {"seeds": SEEDS, "num_games": PRESETS["gpu"].num_envs, "device": "cuda"},
    "paper": {"seeds": SEEDS, "num_games": PRESETS["paper"].num_envs, "device": "cuda"},
}


def notebook_parameters(preset: str, results_dir: str | Path = "results", train: bool = True) -> dict[str, Any]:
    """The parameters papermill gives every notebook on `preset`; `train`: whether notebooks
    may train the runs they need that are missing, unfinished or stale."""
    if preset not in PRESET_PARAMETERS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESET_PARAMETERS)}")
    params = {"preset": preset, **PRESET_PARAMETERS[preset], "results_dir": str(results_dir), "train": bool(train)}
    params["seeds"] = list(params["seeds"])
    return params


def discard_runs(configs: list[str], preset: str, results_dir: str | Path = "results") -> list[Path]:
    """Delete the run folders of `configs` on `preset` (so the notebooks retrain them);
    returns the folders deleted. An unknown config name is an error, before anything is deleted."""
    from ..training.conditions.config import CONFIG_DIR
    from .results import run_dir

    known = sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))
    unknown = [c for c in configs if c not in known]
    if unknown:
        raise ValueError(f"unknown config(s) {unknown} for --retrain; choose from {known}")
    deleted = []
    for config in configs:
        folder = run_dir(results_dir, config, preset)
        if folder.is_dir():
            shutil.rmtree(folder)
            deleted.append(folder)
    return deleted


def notebook_names(notebooks_dir: str | Path = "notebooks") -> list[str]:
    """Names (file stems) of the book's notebooks, sorted."""
    return sorted(p.stem for p in Path(notebooks_dir).glob("*.ipynb") if not p.name.startswith("."))


def select_notebooks(notebooks_dir: str | Path, only: str | None = None) -> list[str]:
    names = notebook_names(notebooks_dir)
    if not names:
        raise FileNotFoundError(f"no notebooks in {str(notebooks_dir)!r}")
    if only is None:
        return names
    name = only.removesuffix(".ipynb")
    if name not in names:
        raise ValueError(f"unknown notebook {only!r}; choose from {names}")
    return [name]


@contextmanager
def _kernel_environment() -> Iterator[None]:
    """The kernel imports the same ssdlib as this process, and keeps its inline figures.

    The kernel inherits this process's environment: the folder holding the imported ssdlib is
    put first on PYTHONPATH, and MPLBACKEND is removed (a backend such as Agg set there would
    replace the inline figures that the book shows).
    """
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "MPLBACKEND")}
    root = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join([root] + ([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else []))
    os.environ.pop("MPLBACKEND", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute_notebook(name: str, parameters: dict[str, Any], book_dir: str | Path = "book",
                     notebooks_dir: str | Path = "notebooks", log_output: bool = False) -> Path:
    """Execute notebooks/NAME.ipynb with papermill into BOOK/generated/NAME.ipynb (atomically)."""
    import papermill

    source = Path(notebooks_dir) / f"{name}.ipynb"
    if not source.is_file():
        raise ValueError(f"unknown notebook {name!r}: no file {str(source)!r}")
    out = Path(book_dir) / "generated" / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".ipynb", dir=out.parent)
    os.close(fd)
    try:
        with _kernel_environment():
            papermill.execute_notebook(
                str(source), tmp, parameters=parameters, kernel_name=KERNEL, cwd=os.getcwd(),
                progress_bar=False, log_output=log_output,
            )
        os.chmod(tmp, 0o644)  # mkstemp's files are private; the book is for readers
        os.replace(tmp, out)
    except papermill.PapermillExecutionError as error:
        failed = Path(book_dir) / "_build" / "failed" / f"{name}.ipynb"
        failed.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, failed)
        raise RuntimeError(
            f"notebook {name!r} failed in cell {error.exec_count} ({error.ename}: {error.evalue}); "
            f"the executed copy with the error is {failed}"
        ) from error
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out


def record_provenance(book_dir: str | Path, name: str, parameters: dict[str, Any], seconds: float) -> None:
    """Add notebook `name`'s execution to BOOK/generated/provenance.json and its table."""
    from .. import runs  # torch and pandas: imported only when notebooks have run

    generated = Path(book_dir) / "generated"
    path = generated / "provenance.json"
    records = json.loads(path.read_text()) if path.is_file() else {}
    import papermill

    records[name] = {
        "notebook": f"notebooks/{name}.ipynb",
        "parameters": parameters,
        "executed_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(seconds, 1),
        **runs.provenance(parameters.get("device", "cpu")),
        "python": platform.python_version(),
        "papermill": papermill.__version__,
    }
    runs.write_json(path, records)
    lines = [
        "| notebook | preset | seeds | games | device | train | executed | seconds | git commit | torch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(records):
        r, p = records[key], records[key]["parameters"]
        seeds = ", ".join(str(s) for s in p.get("seeds", []))
        lines.append(
            f"| {key} | {p.get('preset')} | {seeds} | {p.get('num_games')} | {r.get('device_name', p.get('device'))} "
            f"| {p.get('train')} | {r['executed_at']} | {r['seconds']} | `{r['git_commit']}` | {r['torch']} |"
        )
    table = generated / "provenance_table.md"
    runs.atomic_write(table, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    for written in (path, table):
        os.chmod(written, 0o644)


def write_runs_table(book_dir: str | Path, results_dir: str | Path) -> Path:
    """BOOK/generated/runs_table.md: every run folder under RESULTS/runs with its preset, seeds,
    steps, hardware, torch and git commit, for the book's provenance page."""
    from ..runs import atomic_write
    from .results import available_runs

    lines = [
        "| run | preset | seeds | env steps per seed | finished | hardware | torch | git commit |",
        "|---|---|---|---:|---|---|---|---|",
    ]
    for r in available_runs(results_dir).itertuples(index=False):
        seeds = ", ".join(str(s) for s in r.seeds)
        lines.append(f"| {r.config} | {r.preset} | {seeds} | {r.env_steps_per_seed:,} | {r.finished} | "
                     f"{r.device_name} | {r.torch} | `{r.git_commit}` |")
    if len(lines) == 2:
        lines.append("| (no runs) | | | | | | | |")
    path = Path(book_dir) / "generated" / "runs_table.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    os.chmod(path, 0o644)
    return path


def ensure_mathjax(book_dir: str | Path = "book", npm_dir: str | Path = "build/npm") -> Path:
    """Make BOOK/_vendor/mathjax/ hold MathJax MATHJAX_VERSION; returns that folder.

    Nothing is done when it is already there. Otherwise, unless npm_dir already holds that
    version, `npm install --prefix NPM_DIR mathjax@VERSION` fetches it from the npm registry
    (the only download of the build), and MATHJAX_PARTS of its es5/ folder are copied over.
    """
    target = Path(book_dir) / "_vendor" / "mathjax"
    stamp = target / "VERSION"
    if stamp.is_file() and stamp.read_text().strip() == MATHJAX_VERSION and (target / "tex-chtml.js").is_file():
        return target
    package = Path(npm_dir) / "node_modules" / "mathjax"
    if _npm_mathjax_version(package) != MATHJAX_VERSION:
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed once to vendor MathJax (install Node.js and npm), then rerun")
        Path(npm_dir).mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(npm_dir), "--no-audit", "--no-fund", "--loglevel=error",
             f"mathjax@{MATHJAX_VERSION}"],
            check=True,
        )
        if _npm_mathjax_version(package) != MATHJAX_VERSION:
            raise RuntimeError(f"npm did not install mathjax@{MATHJAX_VERSION} into {package}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".mathjax.", dir=target.parent))
    try:
        for part in MATHJAX_PARTS:
            src, dst = package / "es5" / part, staging / part
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst)
            else:
                shutil.copy2(src, dst)
        shutil.copy2(package / "LICENSE", staging / "LICENSE")
        (staging / "VERSION").write_text(MATHJAX_VERSION + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _npm_mathjax_version(package: Path) -> str | None:
    try:
        return json.loads((package / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def build_book(book_dir: str | Path = "book", npm_dir: str | Path = "build/npm", quiet: bool = False) -> Path:
    """Vendor MathJax, then build the HTML book with warnings as errors; returns index.html."""
    book_dir = Path(book_dir)
    ensure_mathjax(book_dir, npm_dir)
    command = [
        sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
        "build", str(book_dir), "--all", "--warningiserror", "--keep-going",
    ]
    if quiet:
        command.append("--quiet")
    result = subprocess.run(command, capture_output=quiet, text=True, check=False)
    if result.returncode != 0:
        detail = f"\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}" if quiet else ""
        raise RuntimeError(f"jupyter-book build of {str(book_dir)!r} failed (exit {result.returncode}){detail}")
    index = (book_dir / "_build" / "html" / "index.html").resolve()
    if not index.is_file():
        raise RuntimeError(f"the book built, but {index} is missing")
    return index


def reproduce(preset: str = DEFAULT_PRESET, only: str | None = None, book_dir: str | Path = "book",
              results_dir: str | Path = "results", retrain: tuple[str, ...] = (), reuse_only: bool = False,
              notebooks_dir: str | Path = "notebooks", npm_dir: str | Path = "build/npm", quiet: bool = False) -> Path:
    """Execute the notebooks (all, or `only` one) on `preset`, then build the book; returns
    index.html. `retrain`: configs whose runs on the preset are discarded first."""
    parameters = notebook_parameters(preset, results_dir, train=not reuse_only)
    names = select_notebooks(notebooks_dir, only)
    for folder in discard_runs(list(retrain), preset, results_dir):
        print(f"[reproduce] discarded {folder} (--retrain)", flush=True)
    for name in names:
        print(f"[reproduce] executing notebooks/{name}.ipynb on preset {preset!r}", flush=True)
        start = time.perf_counter()
        execute_notebook(name, parameters, book_dir, notebooks_dir)
        record_provenance(book_dir, name, parameters, time.perf_counter() - start)
    generated = Path(book_dir) / "generated"
    missing = [n for n in notebook_names(notebooks_dir) if not (generated / f"{n}.ipynb").is_file()]
    if missing:
        raise FileNotFoundError(
            f"the book needs the executed notebooks {missing} in {str(generated)!r}: run without --only first"
        )
    write_runs_table(book_dir, results_dir)
    print(f"[reproduce] building the book in {book_dir}", flush=True)
    return build_book(book_dir, npm_dir, quiet=quiet)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssdlib.book.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of {sorted(PRESET_PARAMETERS)} (default {DEFAULT_PRESET})")
    parser.add_argument("--only", metavar="NAME", help="execute only notebooks/NAME.ipynb (the others must have run before)")
    parser.add_argument("--book-dir", type=Path, default=Path("book"))
    parser.add_argument("--results", type=Path, default=Path("results"), help="where notebooks read runs and write figures")
    parser.add_argument("--retrain", nargs="+", default=(), metavar="CONFIG",
                        help="discard these configs' runs on the preset so that the notebooks train them again")
    parser.add_argument("--reuse-only", action="store_true",
                        help="never train: a missing, unfinished or stale run is an error")
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"))
    parser.add_argument("--npm-dir", type=Path, default=Path("build/npm"), help="npm folder MathJax is installed into")
    parser.add_argument("--quiet", action="store_true", help="hide jupyter-book's output unless it fails")
    args = parser.parse_args(argv)
    try:
        index = reproduce(args.preset, args.only, args.book_dir, args.results, tuple(args.retrain), args.reuse_only,
                          args.notebooks, args.npm_dir, args.quiet)
    except ValueError as error:
        parser.error(str(error))
    print(index)


if __name__ == "__main__":
    main()
