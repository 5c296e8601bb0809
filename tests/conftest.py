"""Shared test settings and fixtures.

- `smoke_book`: one smoke build of the whole book per test session, shared by tests/test_book.py
  (what the build left behind) and tests/test_pages.py (the pages in headless Chromium).
- `chromium`: the headless browser of the page tests. Without it those tests are skipped, and
  the run ends with one line saying so and why (`make test` installs it where it can); in CI
  (the environment variable CI set) they fail instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
NO_CHROMIUM = (
    "Chromium is not installed: `make test` installs it when run as root where apt-get works "
    "(as .ci/run does in CI); otherwise `apt-get install chromium`"
)


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Test tensors are small: intra-op threads only add latency (a lot of it on a loaded
    2-core machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ---------------------------------------------------------------------------- the smoke build
@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """Execute every notebook on the smoke preset and build the book, in a temporary folder:
    a copy of book/ (without its build, executed notebooks and vendored MathJax), results in
    the same folder, the HTML built with warnings as errors; two notebooks at a time, as the
    runs they share are trained once (`results.ensure_run`)."""
    from ssdlib.book.reproduce import reproduce

    root = tmp_path_factory.mktemp("smoke_book")
    book = root / "book"
    shutil.copytree(REPO / "book", book, ignore=shutil.ignore_patterns("_build", "generated", "_vendor"))
    results = root / "results"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")  # the kernels share a small machine
        mp.setenv("MPLBACKEND", "Agg")  # must not cost the notebooks their inline figures
        index = reproduce(
            "smoke", book_dir=book, results_dir=results, notebooks_dir=REPO / "notebooks",
            npm_dir=REPO / "build" / "npm", quiet=True, jobs=2,
        )
    return SimpleNamespace(root=root, book=book, results=results, index=index, html=book / "_build" / "html")


# ---------------------------------------------------------------------------- Chromium
@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium binary (Debian's `chromium`, installed by `make test` or .ci/run)."""
    path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package in CI")
        pytest.skip(NO_CHROMIUM)
    return path


def pytest_collection_modifyitems(config, items) -> None:
    """Without Chromium (and outside CI), skip the tests that need it before anything is built
    for them."""
    if find_chromium() is not None or os.environ.get("CI"):
        return
    marker = pytest.mark.skip(reason=NO_CHROMIUM)
    for item in items:
        if "chromium" in getattr(item, "fixturenames", ()):
            item.add_marker(marker)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """One line at the end of the run: how many page tests were skipped, and why."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NO_CHROMIUM in str(r.longrepr)]
    if skipped:
        files = sorted({r.nodeid.split("::")[0] for r in skipped})
        terminalreporter.write_line(
            f"SKIPPED {len(skipped)} page test{'s' * (len(skipped) != 1)} ({', '.join(files)}): {NO_CHROMIUM}.",
            yellow=True, bold=True,
        )
