"""Rebuild the book: execute the notebooks whose inputs changed with papermill, then build the
HTML with Jupyter Book.

    python -m ssdlib.book.reproduce                       # the default preset, the whole book
    python -m ssdlib.book.reproduce --preset smoke --only environments
    python -m ssdlib.book.reproduce --force               # execute every notebook and build again

1. A notebook is executed only when what it is made from changed, so a rebuild costs what
   changed. `BOOK/generated/manifest.json` (committed with the executed copies) holds, per
   notebook, the SHA-256 of its inputs when it last ran (`notebook_inputs`): its source
   `notebooks/NAME.ipynb`; its papermill parameters, all but `train` (which only decides whether
   a missing run may be trained: an execution that succeeds read finished, current runs either
   way); the library (every file under ssdlib/ but `__pycache__/` and hidden files); and the
   results (the files RUN_FILES of every run folder under RESULTS/runs: not the checkpoints,
   which the social-dilemma runs keep out of git and which change only with those files, and not
   the figures and tables the notebooks write), and for the notebooks of SWEEP_READERS also those
   files of every finished run (one with `done`) under RESULTS/sweeps, so a sweep still training
   re-executes nothing until one of its runs finishes. It also holds the hash of the executed copy, so a
   copy that is missing or was changed by hand is executed again; `--force` executes every
   notebook. A line per notebook says whether it was up to date or why it runs. The hashes are
   taken before a notebook runs: one that trains or records a missing run changes the results,
   so the next build executes the notebooks once more, then none.
2. Papermill executes `notebooks/NAME.ipynb` (kernel `python3`, working directory the current
   one) with the preset's parameters (`notebook_parameters`: preset, seeds, num_games, device,
   results_dir, train; NOTEBOOK_SEEDS where a notebook's runs hold other seeds). The executed
   copy is normalised (`normalise_executed`): papermill's times, durations and temporary output
   path, the kernel's execution timestamps and widget state are dropped, random ids in the
   outputs (pandas' styled tables, matplotlib's animation player) are numbered in order, object
   addresses are cut from plain-text reprs, and papermill's injected-parameters cell gets a
   fixed id, so the same inputs give the same bytes. Its code cells are tagged for the book
   (`tag_cells`): `hide-input` (the code behind a toggle) unless a cell has a hide- or remove-
   tag already, `remove-cell` on the parameters and injected-parameters cells (the chapter's
   "made from" box names what it was made from). The copy is written atomically to
   `BOOK/generated/NAME.ipynb`, the file the book's chapter points at; the source notebook is
   not touched. A notebook that fails leaves its partly executed copy in
   `BOOK/_build/failed/NAME.ipynb` and the previous chapter untouched. A notebook saves its
   figures to `RESULTS/figures/NAME/*.png` and its tables to `RESULTS/tables/NAME/*.csv` (see
   `ssdlib.book.plotting`).
3. Each execution is recorded (parameters, time, git commit, versions, device) in
   `BOOK/generated/provenance.json`, and as a table in `BOOK/generated/provenance_table.md`
   that the book's provenance page includes; a notebook that is up to date keeps its record.
   `BOOK/generated/runs_table.md` lists the run folders (rewritten only when they changed).
4. MathJax is vendored (`ensure_mathjax`): npm installs the pinned MathJax once into a
   git-ignored folder (`build/npm` by default), and the parts the pages load are copied to
   `BOOK/_vendor/mathjax/`, which Sphinx copies to the site as `mathjax/` (html_extra_path);
   the pages load it from there, so equations render offline and nothing comes from a CDN.
5. `jupyter-book build BOOK --all --warningiserror --keep-going` (jupyter-book 1.x), which does
   not execute notebooks again (execute_notebooks: off). It is skipped when the HTML exists and
   no file of BOOK (but `_build/` and hidden files) changed since it was built
   (`book_sources_hash`, kept in `BOOK/_build/BOOK_STAMP`). The last line printed is the
   absolute path of the book's index page.

Presets: `smoke` runs in seconds (tests), `cpu` is the default (the book's committed figures),
`gpu` and `paper` use a CUDA device. On every preset, finished runs are reused
(`ssdlib.book.results.ensure_run`): a notebook trains a run only when it is missing, resumes one
that is unfinished, and retrains one whose config or preset changed since. `--retrain CONFIG`
discards that config's run on the preset first (on request); `--reuse-only` makes a missing
or stale run an error instead of training it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from ..training.conditions.presets import PRESETS

DEFAULT_PRESET = "cpu"
KERNEL = "python3"
MATHJAX_VERSION = "3.2.2"
# What the pages need from MathJax's es5/ folder: the combined TeX-to-HTML component, the TeX
# extensions it loads on demand (autoload), the fonts of its output, and the components its
# right-click menu loads (accessibility, speech rules).
MATHJAX_PARTS = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y", "sre")

LIBRARY_DIR = Path(__file__).resolve().parents[1]  # the ssdlib package the kernels import
MANIFEST = "manifest.json"  # in BOOK/generated/: the inputs each executed copy was made from
BOOK_STAMP = "reproduce-sources.sha256"  # in BOOK/_build/: the sources the HTML was built from
# What a notebook reads of a run folder (see ssdlib.runs and ssdlib.episodes).
RUN_FILES = frozenset({"config.json", "metrics.parquet", "provenance.json", "done", "episodes.npz"})
# Notebooks that read sweeps (RESULTS/sweeps) as well as runs.
SWEEP_READERS = frozenset({"robustness"})
# Parameters that cannot change a successful execution's outputs (see the module's docstring).
UNHASHED_PARAMETERS = frozenset({"train"})
# Papermill's record of when and for how long, per notebook and per cell: new on every execution.
PAPERMILL_VOLATILE = ("start_time", "end_time", "duration", "exception")
# Ids drawn at random on every execution, found where an HTML output defines them, with the
# format of their replacement: pandas' styled tables (Styler's uuid) and matplotlib's animation
# player (`to_jshtml`, uuid4().hex).
RANDOM_IDS = (
    (re.compile(r'<table id="(T_[0-9a-f]{5})"'), "T_{:05x}"),
    (re.compile(r'<img id="_anim_img([0-9a-f]{32})"'), "{:032x}"),
)
ADDRESS = re.compile(r" at 0x[0-9a-f]+>")  # "<pandas.io.formats.style.Styler at 0x7f09b812e810>"
KEPT_TAG_PREFIXES = ("hide-", "remove-")  # a code cell tagged so keeps its own choice
REMOVED_CELL_TAGS = frozenset({"parameters", "injected-parameters"})

SEEDS = [0, 1, 2, 3, 4]  # the paper reports 5 seeds per condition
PRESET_PARAMETERS: dict[str, dict[str, Any]] = {
    "smoke": {"seeds": [0, 1], "num_games": PRESETS["smoke"].num_envs, "device": "cpu"},
    "cpu": {"seeds": SEEDS, "num_games": PRESETS["cpu"].num_envs, "device": "cpu"},
    "gpu": {"seeds": SEEDS, "num_games": PRESETS["gpu"].num_envs, "device": "cuda"},
    "paper": {"seeds": SEEDS, "num_games": PRESETS["paper"].num_envs, "device": "cuda"},
}
# (notebook, preset) whose runs hold other seeds than the preset's: a notebook may ask only for
# seeds its runs hold (`ssdlib.book.results.ensure_run`), and the cpu preset's Box Trapped
# openers are trained on seeds 0-2 (see the README).
NOTEBOOK_SEEDS: dict[tuple[str, str], list[int]] = {("box_trapped", "cpu"): [0, 1, 2]}


def notebook_parameters(preset: str, results_dir: str | Path = "results", train: bool = True,
                        notebook: str | None = None) -> dict[str, Any]:
    """The parameters papermill gives a notebook on `preset` (the seeds of NOTEBOOK_SEEDS where
    `notebook` has some); `train`: whether notebooks may train the runs they need that are
    missing, unfinished or stale."""
    if preset not in PRESET_PARAMETERS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESET_PARAMETERS)}")
    params = {"preset": preset, **PRESET_PARAMETERS[preset], "results_dir": str(results_dir), "train": bool(train)}
    params["seeds"] = list(NOTEBOOK_SEEDS.get((notebook, preset), params["seeds"]))
    return params


def discard_runs(configs: list[str], preset: str, results_dir: str | Path = "results") -> list[Path]:
    """Delete the run folders of `configs` on `preset` (so the notebooks retrain them);
    returns the folders deleted. An unknown config name is an error, before anything is deleted."""
    from .results import check_names, run_dir

    check_names(configs, preset)  # every packaged config, the ToM ones included
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

    The kernel inherits this process's environment: the folder holding the imported ssdlib
    package is put first on PYTHONPATH, and MPLBACKEND is removed (a backend such as Agg set
    there would replace the inline figures that the book shows).
    """
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "MPLBACKEND")}
    root = str(LIBRARY_DIR.parent)
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
    """Execute notebooks/NAME.ipynb with papermill into BOOK/generated/NAME.ipynb (atomically),
    normalised (`normalise_executed`) and tagged for the book (`tag_cells`)."""
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
        executed = nbformat.read(tmp, as_version=4)
        normalise_executed(executed, str(out))
        tag_cells(executed)
        nbformat.write(executed, tmp)
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


def normalise_executed(nb: nbformat.NotebookNode, output_path: str) -> None:
    """Make an executed notebook depend only on its inputs (in place), so that executing the
    same inputs again gives the same bytes and an unchanged chapter leaves git clean.

    Dropped: papermill's PAPERMILL_VOLATILE fields of the notebook and of each cell, the
    kernel's execution timestamps, the widget state. Papermill's output path (a temporary file)
    becomes `output_path`, its injected-parameters cell (a new random id each time) gets the id
    "injected-parameters", the RANDOM_IDS of HTML outputs are numbered in order of appearance,
    and object addresses are cut from plain-text reprs, and adjacent stream outputs of the same
    stream are merged into one (the kernel may deliver one print in one piece or in two).
    Outputs are otherwise kept.
    """
    papermill_record = nb.metadata.get("papermill")
    if papermill_record is not None:
        for key in PAPERMILL_VOLATILE:
            papermill_record.pop(key, None)
        papermill_record["output_path"] = output_path
    nb.metadata.pop("widgets", None)
    numbered: dict[str, str] = {}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for key in PAPERMILL_VOLATILE:
            cell.metadata.get("papermill", {}).pop(key, None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
        if "outputs" in cell:
            cell.outputs = merged_streams(cell.outputs)
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                output.text = ADDRESS.sub(">", output.text)
            data = output.get("data", {})
            if "text/plain" in data:
                data["text/plain"] = ADDRESS.sub(">", data["text/plain"])
            if "text/html" in data:
                data["text/html"] = _number_random_ids(data["text/html"], numbered)


def merged_streams(outputs: list) -> list:
    """The outputs with each run of adjacent stream outputs of the same name (stdout, stderr)
    joined into one."""
    merged: list = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (output.output_type == "stream" and last is not None and last.output_type == "stream"
                and last.name == output.name):
            last.text = "".join(last.text) + "".join(output.text)
        else:
            merged.append(output)
    return merged


def _number_random_ids(html: str, numbered: dict[str, str]) -> str:
    """`html` with each random id replaced by its number; `numbered` maps the ids met so far in
    the notebook to theirs (one object shown twice keeps one id) and is extended."""
    for pattern, replacement in RANDOM_IDS:
        for random_id in pattern.findall(html):
            numbered.setdefault(random_id, replacement.format(len(numbered) + 1))
    if not numbered:
        return html
    return re.sub("|".join(re.escape(i) for i in numbered), lambda m: numbered[m.group()], html)


def tag_cells(nb: nbformat.NotebookNode) -> None:
    """Tag the code cells of an executed notebook for Jupyter Book (in place): the parameters
    and injected-parameters cells `remove-cell` (the chapter's "made from" box names the
    parameters), every other code cell `hide-input` (the reader sees the outputs and can unfold
    the code) unless it has a hide- or remove- tag of its own."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        if REMOVED_CELL_TAGS.intersection(tags):
            tag = "remove-cell"
        elif any(t.startswith(KEPT_TAG_PREFIXES) for t in tags):
            continue
        else:
            tag = "hide-input"
        if tag not in tags:
            tags.append(tag)


def _tree_files(root: Path, skip: frozenset[str] = frozenset()) -> list[Path]:
    """The files under `root`, leaving out hidden files and folders, `__pycache__/` and the
    folders named in `skip` (not descended into)."""
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__" and d not in skip]
        files += [Path(folder) / n for n in names if not n.startswith(".")]
    return files


def _hash_files(root: Path, files: Iterable[Path]) -> str:
    """One SHA-256 over the files' paths relative to `root` and their contents, so that adding,
    removing or renaming a file changes it as editing one does."""
    digest = hashlib.sha256()
    for relative, path in sorted((p.relative_to(root).as_posix(), p) for p in files):
        digest.update(relative.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def notebook_inputs(name: str, parameters: dict[str, Any], notebooks_dir: str | Path = "notebooks",
                    results_dir: str | Path = "results", library_dir: str | Path = LIBRARY_DIR) -> dict[str, str]:
    """The SHA-256 of each input of notebook NAME's execution: "notebook" (its source),
    "parameters" (but UNHASHED_PARAMETERS), "library" (the files under `library_dir`) and
    "results" (the RUN_FILES under RESULTS/runs, and for SWEEP_READERS those of the finished
    runs under RESULTS/sweeps)."""
    hashed = {k: v for k, v in parameters.items() if k not in UNHASHED_PARAMETERS}
    runs = [p for p in _tree_files(Path(results_dir) / "runs") if p.name in RUN_FILES]
    if name in SWEEP_READERS:
        runs += [p for p in _tree_files(Path(results_dir) / "sweeps")
                 if p.name in RUN_FILES and (p.parent / "done").is_file()]
    return {
        "notebook": _sha256_file(Path(notebooks_dir) / f"{name}.ipynb"),
        "parameters": hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest(),
        "library": _hash_files(Path(library_dir), _tree_files(Path(library_dir))),
        "results": _hash_files(Path(results_dir), runs),
    }


def read_manifest(book_dir: str | Path = "book") -> dict[str, dict[str, str]]:
    """BOOK/generated/manifest.json: per notebook, the inputs its executed copy was made from
    (`notebook_inputs`) and the copy's own hash ("output"); empty when there is none."""
    path = Path(book_dir) / "generated" / MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{str(path)!r} is not valid JSON ({error}); delete it to execute every notebook") from error


def stale_inputs(name: str, inputs: dict[str, str], manifest: dict[str, dict[str, str]],
                 book_dir: str | Path = "book") -> list[str]:
    """Why notebook NAME must be executed again, given its current `inputs` and the manifest:
    [] when its executed copy is up to date."""
    executed = Path(book_dir) / "generated" / f"{name}.ipynb"
    entry = manifest.get(name)
    if not executed.is_file():
        return ["no executed copy"]
    if entry is None:
        return ["not in the manifest"]
    if entry.get("output") != _sha256_file(executed):
        return ["executed copy changed"]
    return [f"{key} changed" for key, value in inputs.items() if entry.get(key) != value]


def execute_notebooks(names: list[str], parameters: dict[str, dict[str, Any]], book_dir: str | Path = "book",
                      notebooks_dir: str | Path = "notebooks", results_dir: str | Path = "results",
                      library_dir: str | Path = LIBRARY_DIR, force: bool = False, jobs: int = 1) -> list[str]:
    """Execute those of `names` whose inputs changed since their executed copy was made (all of
    them with `force`), each with its `parameters[name]`, `jobs` kernels at a time, recording
    each execution in the manifest and the provenance as it finishes; returns the names
    executed, in order. Notebooks that need the same missing run train it once: the others
    wait for it (`results.ensure_run`). When some fail, the others still finish and are
    recorded, then the first failure is raised."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    manifest = read_manifest(book_dir)
    stale: dict[str, dict[str, str]] = {}
    for name in names:
        source = Path(notebooks_dir) / f"{name}.ipynb"
        inputs = notebook_inputs(name, parameters[name], notebooks_dir, results_dir, library_dir)
        reasons = ["--force"] if force else stale_inputs(name, inputs, manifest, book_dir)
        if not reasons:
            print(f"[reproduce] {source} is up to date: skipped", flush=True)
            continue
        print(f"[reproduce] executing {source} on preset {parameters[name]['preset']!r} ({', '.join(reasons)})",
              flush=True)
        stale[name] = inputs

    def run(name: str) -> tuple[Path, float]:
        start = time.perf_counter()
        return execute_notebook(name, parameters[name], book_dir, notebooks_dir), time.perf_counter() - start

    executed, failures = [], []
    with _kernel_environment(), ThreadPoolExecutor(max_workers=jobs) as pool:  # kernels are processes
        futures = {pool.submit(run, name): name for name in stale}
        for future in as_completed(futures):
            name = futures[future]
            try:
                out, seconds = future.result()
            except Exception as error:  # noqa: BLE001 - re-raised below, after the others finish
                print(f"[reproduce] {name} failed: {error}", flush=True)
                failures.append(error)
                continue
            record_provenance(book_dir, name, parameters[name], seconds)
            manifest[name] = {**stale[name], "output": _sha256_file(out)}
            _write_text(Path(book_dir) / "generated" / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            executed.append(name)
    if failures:
        raise failures[0]
    return [name for name in stale if name in executed]


def _write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable by all; a file that already holds it is left
    alone (its time too)."""
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        Path(tmp).write_text(text)
        os.chmod(tmp, 0o644)  # mkstemp's files are private; the book is for readers
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def record_provenance(book_dir: str | Path, name: str, parameters: dict[str, Any], seconds: float) -> None:
    """Add notebook `name`'s execution to BOOK/generated/provenance.json and its table; called
    only when it executed, so a chapter that is up to date keeps its record (and git stays clean)."""
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
    _write_text(path, json.dumps(records, indent=2, sort_keys=True) + "\n")
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
    _write_text(generated / "provenance_table.md", "\n".join(lines) + "\n")


def write_runs_table(book_dir: str | Path, results_dir: str | Path) -> Path:
    """BOOK/generated/runs_table.md: every run folder under RESULTS/runs with its preset, seeds,
    steps, hardware, torch and git commit, for the book's provenance page (left alone when
    unchanged)."""
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
    _write_text(path, "\n".join(lines) + "\n")
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


def book_sources_hash(book_dir: str | Path = "book") -> str:
    """One SHA-256 over what `jupyter-book build` reads: every file of BOOK (pages, config, table
    of contents, references, executed notebooks, vendored MathJax, ...) but `_build/` and
    hidden files."""
    book_dir = Path(book_dir)
    return _hash_files(book_dir, _tree_files(book_dir, skip=frozenset({"_build"})))


def build_book(book_dir: str | Path = "book", npm_dir: str | Path = "build/npm", quiet: bool = False,
               force: bool = False) -> Path:
    """Vendor MathJax, then build the HTML book with warnings as errors; returns index.html.

    The build (about a minute) is skipped, unless `force`, when the HTML exists and was built
    from the same sources (`book_sources_hash`, kept in BOOK/_build/BOOK_STAMP)."""
    book_dir = Path(book_dir)
    ensure_mathjax(book_dir, npm_dir)
    index = (book_dir / "_build" / "html" / "index.html").resolve()
    stamp = book_dir / "_build" / BOOK_STAMP
    sources = book_sources_hash(book_dir)
    if not force and index.is_file() and stamp.is_file() and stamp.read_text().strip() == sources:
        print(f"[reproduce] the book in {book_dir} is up to date: build skipped", flush=True)
        return index
    print(f"[reproduce] building the book in {book_dir}", flush=True)
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
    if not index.is_file():
        raise RuntimeError(f"the book built, but {index} is missing")
    stamp.write_text(sources + "\n")
    return index


def reproduce(preset: str = DEFAULT_PRESET, only: str | None = None, book_dir: str | Path = "book",
              results_dir: str | Path = "results", retrain: tuple[str, ...] = (), reuse_only: bool = False,
              notebooks_dir: str | Path = "notebooks", npm_dir: str | Path = "build/npm", quiet: bool = False,
              force: bool = False, library_dir: str | Path = LIBRARY_DIR, jobs: int = 1) -> Path:
    """Execute the notebooks (all, or `only` one) on `preset` whose inputs changed (all with
    `force`), `jobs` at a time, then build the book if its sources changed; returns index.html.
    `retrain`: configs whose runs on the preset are discarded first."""
    names = select_notebooks(notebooks_dir, only)
    parameters = {name: notebook_parameters(preset, results_dir, not reuse_only, name) for name in names}
    for folder in discard_runs(list(retrain), preset, results_dir):
        print(f"[reproduce] discarded {folder} (--retrain)", flush=True)
    executed = execute_notebooks(names, parameters, book_dir, notebooks_dir, results_dir, library_dir, force, jobs)
    print(f"[reproduce] {len(executed)} notebook(s) executed, {len(names) - len(executed)} up to date", flush=True)
    generated = Path(book_dir) / "generated"
    missing = [n for n in notebook_names(notebooks_dir) if not (generated / f"{n}.ipynb").is_file()]
    if missing:
        raise FileNotFoundError(
            f"the book needs the executed notebooks {missing} in {str(generated)!r}: run without --only first"
        )
    write_runs_table(book_dir, results_dir)
    return build_book(book_dir, npm_dir, quiet=quiet, force=force)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssdlib.book.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of {sorted(PRESET_PARAMETERS)} (default {DEFAULT_PRESET})")
    parser.add_argument("--only", metavar="NAME",
                        help="consider only notebooks/NAME.ipynb (the others must have run before)")
    parser.add_argument("--book-dir", type=Path, default=Path("book"))
    parser.add_argument("--results", type=Path, default=Path("results"), help="where notebooks read runs and write figures")
    parser.add_argument("--retrain", nargs="+", default=(), metavar="CONFIG",
                        help="discard these configs' runs on the preset so that the notebooks train them again")
    parser.add_argument("--reuse-only", action="store_true",
                        help="never train: a missing, unfinished or stale run is an error")
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"))
    parser.add_argument("--npm-dir", type=Path, default=Path("build/npm"), help="npm folder MathJax is installed into")
    parser.add_argument("--quiet", action="store_true", help="hide jupyter-book's output unless it fails")
    parser.add_argument("--force", action="store_true",
                        help="execute the notebooks and build the book even where nothing they read changed")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks executed at a time (default 1)")
    args = parser.parse_args(argv)
    try:
        index = reproduce(args.preset, args.only, args.book_dir, args.results, tuple(args.retrain), args.reuse_only,
                          args.notebooks, args.npm_dir, args.quiet, args.force, jobs=args.jobs)
    except ValueError as error:
        parser.error(str(error))
    print(index)


if __name__ == "__main__":
    main()
