"""Rebuilds that cost what changed: `ssdlib.book.reproduce` executes a notebook only when its
source, parameters, the library or the results changed, writes executed copies that are the
same bytes for the same inputs, tags them for the book, and skips an unchanged book build.

A tiny workspace (one notebook taking the standard parameters, one run folder, a stand-in
library folder) is executed once by papermill per module (`workspace`); each test works on a
copy of it. Tests of what triggers an execution replace papermill by a stub (`stub_execute`):
the real execution is covered by the fixture and the byte-identity test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import nbformat
import pytest

from ssdlib.book import plotting
from ssdlib.book import reproduce as rb

NAME = "a"
PARAMETERS = rb.notebook_parameters("smoke", "results")


def _notebook() -> nbformat.NotebookNode:
    """A notebook with the standard parameters cell and outputs that differ on every execution
    unless normalised: a styled table (random id, object address) and a printed object."""
    parameters = "\n".join(f"{k} = {v!r}" for k, v in rb.notebook_parameters("smoke").items())
    cells = [
        nbformat.v4.new_markdown_cell("# A chapter"),
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('import pandas as pd\npd.DataFrame({"x": [1.0, 2.0]}).style.format("{:.1f}")'),
        nbformat.v4.new_code_cell("print(object())"),
        nbformat.v4.new_code_cell("print(preset, seeds)", metadata={"tags": ["remove-output"]}),
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": kernel, "language_info": {"name": "python"}})


def _execute(force: bool = False, parameters: dict | None = None) -> list[str]:
    """execute_notebooks on the workspace in the current folder."""
    return rb.execute_notebooks([NAME], {NAME: parameters or PARAMETERS}, "book", "notebooks", "results", "lib", force)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> SimpleNamespace:
    """notebooks/a.ipynb, results/ with one run folder and a figure, lib/ (the library), and
    book/generated/ after one execution; all paths relative to the folder, as in the repository.
    `source`: the notebook's bytes before the execution."""
    root = tmp_path_factory.mktemp("rebuild")
    (root / "notebooks").mkdir()
    nbformat.write(_notebook(), root / "notebooks" / f"{NAME}.ipynb")
    source = (root / "notebooks" / f"{NAME}.ipynb").read_bytes()
    run = root / "results" / "runs" / "box_trapped_a3c" / "smoke"
    run.mkdir(parents=True)
    for name, content in [("config.json", "{}"), ("metrics.parquet", "rows"), ("provenance.json", "{}"),
                          ("done", "finished"), ("checkpoint.pt", "weights")]:
        (run / name).write_text(content)
    (root / "results" / "figures" / NAME).mkdir(parents=True)
    (root / "results" / "figures" / NAME / "f.png").write_bytes(b"png")
    (root / "lib").mkdir()
    (root / "lib" / "module.py").write_text("X = 1\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("OMP_NUM_THREADS", "1")
        assert _execute() == [NAME]
    return SimpleNamespace(root=root, source=source)


@pytest.fixture
def copy(workspace, tmp_path, monkeypatch) -> Path:
    """A copy of the executed workspace, as the current folder."""
    target = tmp_path / "ws"
    shutil.copytree(workspace.root, target)
    monkeypatch.chdir(target)
    return target


@pytest.fixture
def stub_execute(monkeypatch) -> list[str]:
    """Replace papermill's execution by a stub writing a placeholder copy; returns the names run."""
    calls: list[str] = []

    def execute(name, parameters, book_dir, notebooks_dir):
        calls.append(name)
        out = Path(book_dir) / "generated" / f"{name}.ipynb"
        out.write_text(json.dumps({"executed": name, "parameters": parameters}))
        return out

    monkeypatch.setattr(rb, "execute_notebook", execute)
    return calls


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_second_run_skips_the_unchanged_notebook(copy, capsys) -> None:
    generated = copy / "book" / "generated"
    before = _snapshot(generated)
    assert set(before) == {f"{NAME}.ipynb", "manifest.json", "provenance.json", "provenance_table.md"}
    assert _execute() == []
    assert "notebooks/a.ipynb is up to date: skipped" in capsys.readouterr().out
    assert _snapshot(generated) == before  # nor provenance, nor manifest rewritten
    manifest = json.loads((generated / "manifest.json").read_text())
    assert set(manifest[NAME]) == {"notebook", "parameters", "library", "results", "output"}
    assert all(len(h) == 64 for h in manifest[NAME].values())


def _edit_notebook(root: Path) -> None:
    path = root / "notebooks" / f"{NAME}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("More."))
    nbformat.write(nb, path)


CHANGES = {
    "notebook changed": _edit_notebook,
    "results changed": lambda root: (root / "results/runs/box_trapped_a3c/smoke/metrics.parquet").write_text("new"),
    "library changed": lambda root: (root / "lib" / "added.py").write_text("Y = 2\n"),
    "no executed copy": lambda root: (root / "book/generated/a.ipynb").unlink(),
    "executed copy changed": lambda root: (root / "book/generated/a.ipynb").write_text("{}"),
}


@pytest.mark.parametrize("reason", sorted(CHANGES))
def test_a_changed_input_executes_the_notebook_again(copy, stub_execute, capsys, reason: str) -> None:
    CHANGES[reason](copy)
    assert _execute() == [NAME] and stub_execute == [NAME]
    assert f"executing notebooks/a.ipynb on preset 'smoke' ({reason})" in capsys.readouterr().out
    assert _execute() == []  # the manifest now holds the new inputs


def test_a_changed_parameter_executes_the_notebook_again(copy, stub_execute, capsys) -> None:
    assert _execute(parameters={**PARAMETERS, "seeds": [7]}) == [NAME]
    assert "(parameters changed)" in capsys.readouterr().out
    assert _execute(parameters={**PARAMETERS, "seeds": [7]}) == []


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


CHANGES_NOT_READ = {
    "checkpoint": lambda root: (root / "results/runs/box_trapped_a3c/smoke/checkpoint.pt").write_text("retrained"),
    "figure the notebook writes": lambda root: (root / "results/figures/a/f.png").write_bytes(b"new png"),
    "bytecode cache": lambda root: _write(root / "lib" / "__pycache__" / "module.cpython-311.pyc", b"x"),
    "temporary file": lambda root: (root / "results/runs/box_trapped_a3c/smoke/.metrics.parquet.tmp").write_text("x"),
}


@pytest.mark.parametrize("change", sorted(CHANGES_NOT_READ))
def test_what_the_notebook_does_not_read_executes_nothing(copy, stub_execute, change: str) -> None:
    CHANGES_NOT_READ[change](copy)
    assert _execute() == [] and stub_execute == []


def test_train_alone_executes_nothing(copy, stub_execute) -> None:
    """`train` only says whether a missing run may be trained: --reuse-only after a build with
    training (or the reverse) reuses the executed copies."""
    assert _execute(parameters={**PARAMETERS, "train": not PARAMETERS["train"]}) == []


def test_parallel_executions_are_all_recorded_and_a_failure_keeps_the_others(copy, monkeypatch) -> None:
    names = ["a", "b", "c"]
    for name in names[1:]:
        shutil.copy(copy / "notebooks" / "a.ipynb", copy / "notebooks" / f"{name}.ipynb")

    def execute(name, parameters, book_dir, notebooks_dir):
        if name == "b":
            raise RuntimeError("notebook 'b' failed in cell 3")
        out = Path(book_dir) / "generated" / f"{name}.ipynb"
        out.write_text(name)
        return out

    monkeypatch.setattr(rb, "execute_notebook", execute)
    with pytest.raises(RuntimeError, match="'b' failed"):
        rb.execute_notebooks(names, {n: PARAMETERS for n in names}, "book", "notebooks", "results", "lib",
                             force=True, jobs=3)
    manifest = rb.read_manifest("book")
    assert {"a", "c"} <= set(manifest) and "b" not in manifest
    provenance = json.loads((copy / "book" / "generated" / "provenance.json").read_text())
    assert {"a", "c"} <= set(provenance)
    with pytest.raises(ValueError, match="jobs must be at least 1, got 0"):
        rb.execute_notebooks(names, {n: PARAMETERS for n in names}, "book", "notebooks", "results", "lib", jobs=0)


def test_a_notebook_gets_the_seeds_its_runs_hold() -> None:
    assert rb.notebook_parameters("cpu", notebook="box_trapped")["seeds"] == [0, 1, 2]
    assert rb.notebook_parameters("cpu", notebook="experiment1")["seeds"] == rb.SEEDS
    assert rb.notebook_parameters("smoke", notebook="box_trapped") == rb.notebook_parameters("smoke")


def test_force_executes_again_into_the_same_bytes(copy, capsys) -> None:
    executed = copy / "book" / "generated" / f"{NAME}.ipynb"
    before = executed.read_bytes()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        assert _execute(force=True) == [NAME]
    assert "(--force)" in capsys.readouterr().out
    assert executed.read_bytes() == before
    nb = nbformat.reads(before.decode(), as_version=4)
    assert set(nb.metadata.papermill) == {"default_parameters", "environment_variables", "input_path", "output_path",
                                          "parameters", "version"}
    assert nb.metadata.papermill.output_path == "book/generated/a.ipynb"
    for cell in nb.cells:
        assert "execution" not in cell.metadata
        assert set(cell.metadata.get("papermill", {})) <= {"status"}
    html = "".join(o.data["text/html"] for o in nb.cells[3].outputs if "text/html" in o.get("data", {}))
    assert '<table id="T_00001"' in html
    texts = [o.data["text/plain"] for c in nb.cells for o in c.get("outputs", []) if "text/plain" in o.get("data", {})]
    texts += [o.text for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream"]
    assert "<object object>\n" in texts and not [t for t in texts if " at 0x" in t]


def test_executed_copy_is_tagged_for_the_book_and_the_source_untouched(workspace) -> None:
    assert (workspace.root / "notebooks" / f"{NAME}.ipynb").read_bytes() == workspace.source
    nb = nbformat.read(workspace.root / "book" / "generated" / f"{NAME}.ipynb", as_version=4)
    tags = [(c.cell_type, c.metadata.get("tags", [])) for c in nb.cells]
    assert tags == [
        ("markdown", []),
        ("code", ["parameters", "remove-cell"]),
        ("code", ["injected-parameters", "remove-cell"]),
        ("code", ["hide-input"]),
        ("code", ["hide-input"]),
        ("code", ["remove-output"]),
    ]
    assert nb.cells[2].id == "injected-parameters"


def test_normalise_numbers_random_ids_across_outputs() -> None:
    anim = "0123456789abcdef" * 2
    html = f'<img id="_anim_img{anim}"><input id="_anim_slider{anim}" oninput="anim{anim}.set_frame(1)">'
    styled = '<style>#T_9f3a1_row0_col0 {}</style><table id="T_9f3a1"><td id="T_9f3a1_row0_col0">1</td></table>'
    nb = nbformat.v4.new_notebook(metadata={"widgets": {"state": {}}}, cells=[
        nbformat.v4.new_code_cell("", outputs=[
            nbformat.v4.new_output("display_data", {"text/html": styled, "text/plain": "<Styler at 0x7f01>"}),
            nbformat.v4.new_output("execute_result", {"text/html": styled}, execution_count=1),
        ]),
        nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output("display_data", {"text/html": html})]),
    ])
    rb.normalise_executed(nb, "out.ipynb")
    first, again = (o.data["text/html"] for o in nb.cells[0].outputs)
    assert first == again == styled.replace("T_9f3a1", "T_00001")
    assert nb.cells[0].outputs[0].data["text/plain"] == "<Styler>"
    assert nb.cells[1].outputs[0].data["text/html"] == html.replace(anim, f"{2:032x}")
    assert "widgets" not in nb.metadata


def test_normalise_merges_one_print_split_into_two_stream_outputs() -> None:
    def cell(*texts: tuple[str, str]) -> nbformat.NotebookNode:
        return nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output("stream", name=name, text=text)
                                                      for name, text in texts])
    nb = nbformat.v4.new_notebook(cells=[
        cell(("stdout", "seed 3: steps 0-79"), ("stdout", "\n")),
        cell(("stdout", "seed 3: steps 0-79\n")),
        cell(("stdout", "a\n"), ("stderr", "warning\n"), ("stdout", "b\n")),
    ])
    rb.normalise_executed(nb, "out.ipynb")
    assert nb.cells[0].outputs == nb.cells[1].outputs
    assert [(o.name, o.text) for o in nb.cells[0].outputs] == [("stdout", "seed 3: steps 0-79\n")]
    assert [(o.name, o.text) for o in nb.cells[2].outputs] == [("stdout", "a\n"), ("stderr", "warning\n"),
                                                                ("stdout", "b\n")]


def test_book_build_is_skipped_when_its_sources_are_unchanged(tmp_path, monkeypatch, capsys) -> None:
    book = tmp_path / "book"
    (book / "_vendor" / "mathjax").mkdir(parents=True)  # as if vendored: ensure_mathjax does nothing
    (book / "_vendor" / "mathjax" / "VERSION").write_text(rb.MATHJAX_VERSION)
    (book / "_vendor" / "mathjax" / "tex-chtml.js").write_text("")
    (book / "index.md").write_text("# Book\n")
    builds: list[list[str]] = []

    def build(command, **kwargs):
        builds.append(command)
        (book / "_build" / "html").mkdir(parents=True, exist_ok=True)
        (book / "_build" / "html" / "index.html").write_text("<html></html>")
        return rb.subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(rb.subprocess, "run", build)
    index = rb.build_book(book, tmp_path / "npm")
    assert index == (book / "_build" / "html" / "index.html").resolve() and len(builds) == 1
    assert rb.build_book(book, tmp_path / "npm") == index and len(builds) == 1
    assert "build skipped" in capsys.readouterr().out
    (book / "_build" / "html" / "other.html").write_text("")  # the output is not a source
    (book / ".notes.md.swp").write_text("")  # nor a hidden file
    rb.build_book(book, tmp_path / "npm")
    assert len(builds) == 1
    (book / "index.md").write_text("# Book, edited\n")
    rb.build_book(book, tmp_path / "npm")
    assert len(builds) == 2
    rb.build_book(book, tmp_path / "npm", force=True)
    assert len(builds) == 3
    (book / "_build" / "html" / "index.html").unlink()
    rb.build_book(book, tmp_path / "npm")
    assert len(builds) == 4


def test_a_figure_saved_twice_is_the_same_bytes(tmp_path) -> None:
    with plt.rc_context():
        plotting.use_book_style()
        fig, ax = plt.subplots()
        try:
            ax.plot([0, 1, 2], [0.001, 0.004, 0.002], label="influence")
            ax.legend()
            first = plotting.save_figure(fig, tmp_path / "one.png").read_bytes()
            second = plotting.save_figure(fig, tmp_path / "two.png").read_bytes()
        finally:
            plt.close(fig)
    assert first == second
