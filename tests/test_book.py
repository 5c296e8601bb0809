"""The reproducible book: notebooks run under papermill, the book builds.

One smoke build per test session (`smoke_book`, tests/conftest.py): a copy of book/ in a
temporary folder, every notebook executed by `ssdlib.book.reproduce` on the smoke preset with
results in that folder, and the HTML built with warnings as errors. The tests here read what
that build left behind; tests/test_pages.py looks at its pages in headless Chromium.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ssdlib.book import plotting, showcase
from ssdlib.book.reproduce import (
    MATHJAX_VERSION,
    PRESET_PARAMETERS,
    ensure_mathjax,
    notebook_names,
    notebook_parameters,
    reproduce,
    select_notebooks,
)
from ssdlib.envs import palette
from ssdlib.experiments import random_policy, schelling

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = notebook_names(REPO / "notebooks")
PARAMETERS = {"preset", "seeds", "num_games", "device", "results_dir", "train"}
ENVIRONMENT_FIGURES = {"maps", "penalty_beam", "cleaning_beam", "box_trapped_open", "random_policy"}


def test_there_are_notebooks_and_each_is_a_chapter() -> None:
    assert "environments" in NOTEBOOKS
    toc = (REPO / "book" / "_toc.yml").read_text()
    for name in NOTEBOOKS:
        assert f"file: generated/{name}" in toc, f"notebooks/{name}.ipynb has no chapter in book/_toc.yml"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_has_the_shared_parameters_cell(name: str) -> None:
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assigned = set(re.findall(r"^(\w+)\s*=", tagged[0].source, flags=re.MULTILINE))
    assert assigned == PARAMETERS
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_on_smoke_and_makes_its_figures(smoke_book, name: str) -> None:
    executed = nbformat.read(smoke_book.book / "generated" / f"{name}.ipynb", as_version=4)
    assert executed.metadata.papermill.parameters == notebook_parameters("smoke", smoke_book.results)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, "the executed notebook shows no figure inline"
    pngs = sorted((smoke_book.results / "figures" / name).glob("*.png"))
    assert pngs, f"no figures saved in results/figures/{name}/"
    for png in pngs:
        with Image.open(png) as im:
            assert im.format == "PNG" and min(im.size) > 50
    assert not list((smoke_book.results / "figures" / name).glob(".*")), "temporary files left behind"


def test_environments_notebook_outputs(smoke_book) -> None:
    figures = {p.stem for p in (smoke_book.results / "figures" / "environments").glob("*.png")}
    assert figures == ENVIRONMENT_FIGURES
    table = (smoke_book.results / "tables" / "environments" / "random_policy.csv").read_text().splitlines()
    assert table[0].startswith("game,games,collective_reward_mean")
    assert [line.split(",")[0] for line in table[1:]] == ["cleanup", "harvest", "box_trapped"]


# ---------------------------------------------------------------------------- the built book
def _script_sources(html: str) -> list[str]:
    return re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", html)


def test_box_trapped_notebook_outputs(smoke_book) -> None:
    figures = {p.stem for p in (smoke_book.results / "figures" / "box_trapped").glob("*.png")}
    assert figures == {"open_rate_training", "figure12_open_counts", "figure13_influence_trajectory"}
    table = smoke_book.results / "tables" / "box_trapped" / "open_fraction.csv"
    assert "paper (reference)" in table.read_text()


def test_social_dilemma_notebooks_outputs(smoke_book) -> None:
    figures = {name: {p.stem for p in (smoke_book.results / "figures" / name).glob("*.png")}
               for name in ("experiment1", "experiment2", "experiment3", "baselines", "results")}
    assert figures == {
        "experiment1": {"figure1_collective_reward", "figure16_equality_weighted"},
        "experiment2": {"figure4_collective_reward", "figure5_communication", "listening"},
        "experiment3": {"figure7_collective_reward", "moa_accuracy", "listening", "influence_sparsity"},
        "baselines": {"figure15_collective_reward", "equality"},
        "results": {"table4_smoke"},
    }
    tables = smoke_book.results / "tables"
    experiment1 = pd.read_csv(tables / "experiment1" / "table4_experiment1.csv")
    assert list(experiment1.config) == [f"{g}_{c}" for g in ("cleanup", "harvest") for c in ("a3c", "visible", "influence")]
    assert (experiment1.preset == "smoke").all() and (experiment1["steps per seed"] == 1_600).all()
    baselines = pd.read_csv(tables / "baselines" / "table4_baselines.csv")
    assert set(baselines.config) == {f"{g}_{c}" for g in ("cleanup", "harvest") for c in ("prosocial", "inequity_aversion")}
    table4 = pd.read_csv(tables / "results" / "table4_smoke.csv")
    assert len(table4) == 18 and set(table4.paper.dropna()) == {89, 190, 275, 485, 1073, 750, 166, 951, 392, 588}


def test_results_chapter_shows_the_conditions_finished_on_another_preset(smoke_book, tmp_path) -> None:
    """Two smoke runs copied to the `campaign` preset (where the GPU campaign's finished runs
    land) appear in the results chapter as that preset's table, which names the 16 configs not
    finished on it."""
    from ssdlib.book import results
    from ssdlib.book.reproduce import execute_notebooks

    root = tmp_path / "results"
    shutil.copytree(smoke_book.results / "runs", root / "runs")
    for config in ("cleanup_a3c", "harvest_a3c"):
        shutil.copytree(results.run_dir(root, config, "smoke"), results.run_dir(root, config, "campaign"))
    book = tmp_path / "book"
    parameters = notebook_parameters("smoke", root, train=False, notebook="results")
    execute_notebooks(["results"], {"results": parameters}, book_dir=book, notebooks_dir=REPO / "notebooks",
                      results_dir=root, force=True)
    table = pd.read_csv(root / "tables" / "results" / "table4_campaign.csv")
    assert list(table.config) == ["cleanup_a3c", "harvest_a3c"] and (table.preset == "campaign").all()
    text = json.dumps(nbformat.read(book / "generated" / "results.ipynb", as_version=4))
    assert "2 of 18 configs finished; not yet: cleanup_visible" in text


def test_schelling_notebook_outputs(smoke_book) -> None:
    figures = {p.stem for p in (smoke_book.results / "figures" / "schelling").glob("*.png")}
    assert figures == {"figure10_schelling"}
    tables = smoke_book.results / "tables" / "schelling"
    assert {p.stem for p in tables.glob("*.csv")} == {"per_game", "schelling", "average_return", "criteria"}
    table = pd.read_csv(tables / "schelling.csv", index_col=0)
    assert tuple(table.columns) == schelling.COLUMNS and len(table) == 2 * 5 * 2
    assert (table.games == notebook_parameters("smoke")["num_games"]).all()


def test_robustness_notebook_trains_its_smoke_sweeps_and_pools_the_top_settings(smoke_book) -> None:
    figures = {p.stem for p in (smoke_book.results / "figures" / "robustness").glob("*.png")}
    assert figures == {"figure17_top_settings"}
    tables = smoke_book.results / "tables" / "robustness"
    summary = pd.read_csv(tables / "sweep_summary.csv")
    configs = [f"{g}_{c}" for g in ("cleanup", "harvest") for c in ("a3c", "visible", "influence")]
    assert list(summary.config) == [c for c in configs for _ in range(2)]  # the smoke sweeps: 2 settings
    assert (summary.status == "done").all() and (summary.env_steps_per_seed == 1_600).all()
    for config in configs:
        assert (smoke_book.results / "sweeps" / f"robustness_{config}" / "smoke" / "run-001" / "done").is_file()
    final = pd.read_csv(tables / "top_settings_final.csv")
    assert list(final.config) == configs and (final.settings == 2).all() and (final.replicates == 4).all()


def test_book_builds_and_loads_mathjax_locally(smoke_book) -> None:
    assert smoke_book.index == (smoke_book.html / "index.html").resolve()
    index = smoke_book.index.read_text()
    assert "Social influence as intrinsic motivation" in index
    mathjax = [s for s in _script_sources(index) if "mathjax" in s.lower()]
    assert len(mathjax) == 1 and "tex-chtml.js" in mathjax[0]
    assert (smoke_book.html / mathjax[0].split("?")[0]).resolve().is_file()
    assert (smoke_book.html / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    for page in smoke_book.html.rglob("*.html"):
        text = page.read_text()
        remote = [s for s in _script_sources(text) if "://" in s or s.startswith("//")]
        assert not remote, f"{page.name} loads scripts from the network: {remote}"
        sheets = re.findall(r"<link[^>]*rel=\"stylesheet\"[^>]*href=\"([^\"]+)\"", text)
        assert not [s for s in sheets if "://" in s], f"{page.name} loads stylesheets from the network"
        assert "cdn.jsdelivr" not in text and "cdnjs" not in text


def test_book_pages_show_chapters_figures_citations_and_provenance(smoke_book) -> None:
    chapter = (smoke_book.html / "generated" / "environments.html").read_text()
    images = re.findall(r"<img[^>]*src=\"([^\"]+)\"", chapter)
    assert len(images) >= len(ENVIRONMENT_FIGURES)
    for src in images:
        assert (smoke_book.html / "generated" / src).resolve().is_file(), src
    bibliography = (smoke_book.html / "bibliography.html").read_text()
    for author in ("Jaques", "Hughes", "Leibo", "Perolat"):
        assert author in bibliography
    provenance = (smoke_book.html / "provenance.html").read_text()
    assert "environments" in provenance and "smoke" in provenance
    assert "cleanup_influence" in provenance and "box_trapped_a3c" in provenance  # the runs table
    record = json.loads((smoke_book.book / "generated" / "provenance.json").read_text())
    assert set(record) == set(NOTEBOOKS)
    assert record["environments"]["parameters"]["preset"] == "smoke"


def test_mathjax_vendoring_is_idempotent(smoke_book) -> None:
    target = smoke_book.book / "_vendor" / "mathjax"
    before = (target / "tex-chtml.js").stat().st_mtime_ns
    assert ensure_mathjax(smoke_book.book, REPO / "build" / "npm") == target
    assert (target / "tex-chtml.js").stat().st_mtime_ns == before
    assert (target / "VERSION").read_text().strip() == MATHJAX_VERSION


# ---------------------------------------------------------------------------- reproduce's checks
def test_reproduce_names_unknown_presets_and_notebooks() -> None:
    with pytest.raises(ValueError, match="'fast'"):
        notebook_parameters("fast")
    with pytest.raises(ValueError, match="'nope'"):
        select_notebooks(REPO / "notebooks", "nope")
    with pytest.raises(ValueError, match="'fast'"):
        reproduce("fast", notebooks_dir=REPO / "notebooks")
    assert select_notebooks(REPO / "notebooks", "environments.ipynb") == ["environments"]


def test_notebook_parameters_per_preset() -> None:
    assert set(PRESET_PARAMETERS) == {"smoke", "cpu", "gpu", "paper"}
    for preset in PRESET_PARAMETERS:
        params = notebook_parameters(preset, "out")
        assert set(params) == PARAMETERS and params["preset"] == preset and params["results_dir"] == "out"
    assert notebook_parameters("cpu")["train"] is True  # missing or stale runs are trained
    assert notebook_parameters("cpu", train=False)["train"] is False  # --reuse-only
    assert notebook_parameters("smoke")["num_games"] == 4


# ---------------------------------------------------------------------------- ssdlib.book.plotting
@pytest.fixture
def figure():
    fig, ax = plt.subplots()
    yield fig, ax
    plt.close(fig)


def test_show_map_draws_cells_crisp_without_ticks(figure) -> None:
    _, ax = figure
    rgb = np.zeros((3, 4, 3), dtype=np.uint8)
    rgb[1, 2] = (0, 255, 0)
    image = plotting.show_map(ax, torch.from_numpy(rgb), "tiny")
    assert np.array_equal(image.get_array(), rgb)
    assert image.get_interpolation() == "nearest"
    assert ax.get_title() == "tiny" and not ax.get_xticks().size and not ax.get_yticks().size
    with pytest.raises(ValueError, match="shape"):
        plotting.show_map(ax, np.zeros((3, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        plotting.show_map(ax, np.zeros((3, 4, 3)))


def test_show_frames_lays_out_panels() -> None:
    frames = [(f"step {i}", np.full((5, 7, 3), 40 * i, dtype=np.uint8)) for i in range(5)]
    fig = plotting.show_frames(frames, ncols=3, suptitle="five")
    try:
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert len(fig.axes) == 6 and len(visible) == 5
        assert [ax.get_title() for ax in visible] == [t for t, _ in frames]
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="at least one"):
        plotting.show_frames([])


def test_use_book_style_sets_one_style() -> None:
    with plt.rc_context():
        plotting.use_book_style()
        assert plt.rcParams["image.interpolation"] == "nearest"
        assert plt.rcParams["axes.spines.top"] is False
        assert plt.rcParams["font.family"] == ["DejaVu Sans"]


def test_condition_colours_and_legend() -> None:
    assert plotting.condition_colour("cleanup_influence") == plotting.CONDITION_COLOURS["influence"]
    assert plotting.condition_colour("harvest_inequity_aversion") == plotting.CONDITION_COLOURS["inequity_aversion"]
    assert plotting.condition_colour("a3c") == plotting.CONDITION_COLOURS["a3c"]
    with pytest.raises(ValueError, match="'cleanup_magic'"):
        plotting.condition_colour("cleanup_magic")
    handles = plotting.map_legend_handles("cleanup", num_agents=2)
    assert [h.get_label() for h in handles][-2:] == ["agent 0", "agent 1"]
    apple = next(h for h in handles if h.get_label() == "apple")
    assert np.allclose(apple.get_facecolor()[:3], palette.PALETTE[palette.APPLE].numpy() / 255)
    with pytest.raises(ValueError, match="'chess'"):
        plotting.map_legend_handles("chess")


def test_save_figure_and_table_write_atomically(figure, tmp_path) -> None:
    fig, ax = figure
    plotting.show_map(ax, np.zeros((4, 4, 3), dtype=np.uint8))
    path = plotting.save_figure(fig, plotting.figure_path(tmp_path, "nb", "map"))
    assert path == tmp_path / "figures" / "nb" / "map.png"
    with Image.open(path) as im:
        assert im.format == "PNG"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert sorted(p.name for p in path.parent.iterdir()) == ["map.png"]
    table = random_policy.summarise(random_policy.random_policy_stats("box_trapped", 2, horizon=5))
    csv = plotting.save_table(table, plotting.table_path(tmp_path, "nb", "t"))
    assert csv == tmp_path / "tables" / "nb" / "t.csv" and csv.read_text().startswith("game,games,")


# ---------------------------------------------------------------------------- ssdlib.book.showcase
def test_penalty_beam_scene_fines_the_firer_and_the_hit_agent() -> None:
    scene = showcase.penalty_beam_scene()
    assert scene.rewards.tolist() == [[-1.0, -50.0, 0.0, 0.0, 0.0]]
    assert scene.events[0]["hits"].tolist() == [0, 1, 0, 0, 0]
    before, after = scene.frames[0][1], scene.frames[1][1]
    beam = palette.PALETTE[palette.PENALTY_BEAM].numpy()
    assert not (before == beam).all(-1).any() and (after == beam).all(-1).sum() > 3


def test_cleaning_scene_cleans_waste() -> None:
    scene = showcase.cleaning_scene(steps=3)
    cleaned = [int(e["cleaned"][0]) for e in scene.events if e["clean"][0]]
    assert len(cleaned) == 3 and all(c > 0 for c in cleaned)
    waste = palette.PALETTE[palette.WASTE].numpy()
    counts = [(rgb == waste).all(-1).sum() for _, rgb in scene.frames]
    assert counts[-1] < counts[0]


def test_box_trapped_scene_frees_the_trapped_agent() -> None:
    scene = showcase.box_trapped_scene()
    assert scene.events[0]["open"].tolist() == [1, 0]
    wall = palette.PALETTE[palette.WALL].numpy()
    walls = [(rgb == wall).all(-1).sum() for _, rgb in scene.frames]
    assert walls[1] == walls[0] - 8  # the box's eight walls are gone
    agent1 = palette.PALETTE[palette.AGENT + 1].numpy()
    assert tuple(np.argwhere((scene.frames[-1][1] == agent1).all(-1))[0]) == (3, 5)


def test_place_agents_rejects_walls_and_shared_cells() -> None:
    from ssdlib.envs import make_env

    env = make_env("harvest", num_envs=1)
    with pytest.raises(ValueError, match="wall"):
        showcase.place_agents(env, [(0, 0), (1, 2), (1, 6), (2, 3), (14, 2)], [0] * 5)
    with pytest.raises(ValueError, match="one cell"):
        showcase.place_agents(env, [(1, 2)] * 5, [0] * 5)
