"""The book's pages in headless Chromium (Debian's `chromium`), at a 1280 px wide window.

Every page of book/_toc.yml (the chapters, the front page, provenance and bibliography) of the
session's smoke build (`smoke_book`, tests/conftest.py):

- is screenshotted, full page height, into build/screenshots/NAME.png (kept after the run, for
  people to look at) and the screenshot must show a rendered page (`_assert_rendered_page`);
- is loaded with a probe script (`LAYOUT_PROBE`) that waits for MathJax, then measures: no
  element of the main text column reaches past the column unless it sits in a box that scrolls
  sideways, no element holds content wider than itself without a scroll bar, the page itself is
  no wider than the window, and every table cell has padding (numbers never run together);
- after MathJax ran, shows no `$...$` with TeX in it as plain text (`raw_tex`).

Without Chromium these tests are skipped, with one line saying so at the end of the run
(tests/conftest.py); in CI they fail. SSDLIB_BOOK_HTML=book/_build/html checks an existing
build instead of making the smoke build (the screenshots still go to build/screenshots/).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "build" / "screenshots"
WIDTH = 1280
MAX_HEIGHT = 20_000  # px; a longer page is screenshotted down to this height
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MATHJAX_BUDGET = "--virtual-time-budget=15000"  # virtual ms: the page's scripts, MathJax included, run


def book_pages() -> list[str]:
    """The pages of book/_toc.yml, as paths without suffix ("index", "generated/experiment1")."""
    toc = yaml.safe_load((REPO / "book" / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part.get("chapters", [])]
    pages += [chapter["file"] for chapter in toc.get("chapters", [])]
    return pages


PAGES = book_pages()
NAMES = {page: Path(page).name for page in PAGES}


# ---------------------------------------------------------------------------- Chromium
def _chromium(binary: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=180, check=False,
        )


def _screenshot(binary: str, page: Path, out: Path, height: int) -> np.ndarray:
    """A screenshot of `page` in a 1280 x `height` window, after its scripts (MathJax) ran."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    result = _chromium(binary, MATHJAX_BUDGET, f"--screenshot={out}", f"--window-size={WIDTH},{height}",
                       page.resolve().as_uri())
    assert out.is_file(), f"no screenshot of {page}: {result.stderr[-2000:]}"
    with Image.open(out) as im:
        assert im.size == (WIDTH, height)
        return np.asarray(im.convert("RGB"))


def _assert_rendered_page(rgb: np.ndarray) -> None:
    """A rendered page, not a blank or an error screen: text on a light background."""
    grey = rgb.mean(-1)
    ink = grey < 128
    assert 0.01 < ink.mean() < 0.5, f"dark (text) pixels: {ink.mean():.4f} of the page"
    assert (grey > 230).mean() > 0.4, "the page background is not light"
    assert grey.std() > 20
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    colours = np.unique(packed)  # one int per colour: np.unique(axis=0) takes a minute on a long page
    assert len(colours) > 200, f"only {len(colours)} distinct colours: no anti-aliased text"
    rows_with_ink = ink.any(1).mean()
    assert rows_with_ink > 0.3, "text covers too few lines of the page"


# ---------------------------------------------------------------------------- the layout probe
# Runs in the page once it and MathJax are done; writes its findings into the DOM as a JSON
# script element, which `--dump-dom` prints. The main column is the content box of the theme's
# <article class="bd-article">.
LAYOUT_PROBE = r"""
(function () {
  "use strict";
  function scrolls(el) {
    var o = getComputedStyle(el).overflowX;
    return o === "auto" || o === "scroll";
  }
  function name(el) {
    var s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    if (typeof el.className === "string" && el.className.trim()) s += "." + el.className.trim().split(/\s+/).join(".");
    var text = (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 60);
    return s + (text ? " \"" + text + "\"" : "");
  }
  function measure() {
    var main = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
    var outer = main.getBoundingClientRect(), style = getComputedStyle(main);
    var left = outer.left + parseFloat(style.paddingLeft), right = outer.right - parseFloat(style.paddingRight);
    var problems = [], cramped = [], checked = 0;
    main.querySelectorAll("*").forEach(function (el) {
      var r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || el.closest("mjx-assistive-mml")) return;  // MathML for screen readers, clipped
      for (var a = el.parentElement; a && a !== main; a = a.parentElement) if (scrolls(a)) return;
      checked += 1;
      if (r.right > right + 1 || r.left < left - 1) {
        problems.push("reaches " + Math.round(r.left) + ".." + Math.round(r.right) + " px, outside the column " +
                      Math.round(left) + ".." + Math.round(right) + " px: " + name(el));
      } else if (!el.closest("mjx-container, span.math") && el.clientWidth > 0 &&
                 el.scrollWidth > el.clientWidth + 1 && !scrolls(el)) {
        problems.push("holds " + el.scrollWidth + " px of content in " + el.clientWidth +
                      " px without a scroll bar: " + name(el));
      }
    });
    main.querySelectorAll("td, th").forEach(function (el) {
      var s = getComputedStyle(el);
      var padding = parseFloat(s.paddingLeft) + parseFloat(s.paddingRight);
      if (padding < 8) cramped.push(padding.toFixed(1) + " px of padding: " + name(el));
    });
    var report = {
      width: window.innerWidth, page_width: document.documentElement.scrollWidth,
      height: document.documentElement.scrollHeight, column: [Math.round(left), Math.round(right)],
      checked: checked, overflow: problems, cramped_cells: cramped
    };
    var out = document.createElement("script");
    out.type = "application/json";
    out.id = "layout-probe-report";
    out.textContent = JSON.stringify(report).replace(/</g, "\\u003c");
    document.body.appendChild(out);
  }
  window.addEventListener("load", function () {
    var mathjax = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
    Promise.resolve(mathjax).then(function () { setTimeout(measure, 100); });
  });
})();
"""
_REPORT = re.compile(r'<script type="application/json" id="layout-probe-report">(.*?)</script>', re.DOTALL)


def probe_page(binary: str, page: Path, workdir: Path) -> tuple[dict, str]:
    """Load `page` at 1280 px with `LAYOUT_PROBE`; returns (its report, the DOM after MathJax).

    The page is copied into `workdir` with a <base> pointing at its folder, so the book itself
    is never written to."""
    page = page.resolve()
    html = page.read_text()
    base = f'<base href="{page.parent.as_uri()}/">'
    html = re.sub(r"<head([^>]*)>", lambda m: m.group(0) + base, html, count=1)
    end = html.rfind("</body>")
    assert end > 0, f"{page} has no </body>"
    html = html[:end] + f"<script>{LAYOUT_PROBE}</script>" + html[end:]
    copy = workdir / f"{page.stem}.probe.html"
    copy.write_text(html)
    result = _chromium(binary, MATHJAX_BUDGET, f"--window-size={WIDTH},900", "--dump-dom", copy.as_uri())
    found = _REPORT.search(result.stdout)
    assert found, f"the layout probe did not report on {page.name}: {result.stderr[-2000:]}"
    return json.loads(found.group(1)), result.stdout


# ---------------------------------------------------------------------------- raw TeX
_SKIPPED = {"mjx-container", "script", "style", "code", "pre", "textarea"}
_BLOCKS = {"p", "div", "li", "td", "th", "tr", "table", "section", "article", "h1", "h2", "h3", "h4", "h5",
           "h6", "dd", "dt", "dl", "ul", "ol", "figcaption", "caption", "blockquote", "br", "hr", "body", "nav",
           "header", "footer", "aside", "main", "details", "summary"}
_DOLLARS = re.compile(r"\$\$?([^$]+?)\$\$?")
_TEX = re.compile(r"\\[A-Za-z]+|[\^_{}]")
_DELIMITED = re.compile(r"\\\((.+?)\\\)|\\\[(.+?)\\\]")


class _Text(HTMLParser):
    """The text of a page outside math, code and scripts, one string per block."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.blocks: list[str] = []
        self.current: list[str] = []

    def _flush(self) -> None:
        text = "".join(self.current).strip()
        if text:
            self.blocks.append(" ".join(text.split()))
        self.current = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag in _SKIPPED:
            self.depth += 1
        elif tag in _BLOCKS and not self.depth:
            self._flush()

    def handle_endtag(self, tag) -> None:
        if tag in _SKIPPED:
            self.depth = max(self.depth - 1, 0)
        elif tag in _BLOCKS and not self.depth:
            self._flush()

    def handle_data(self, data) -> None:
        if not self.depth:
            self.current.append(data)


def raw_tex(dom: str) -> list[str]:
    """Each `$...$` (or `$$...$$`) with TeX in it (a command, ^, _ or braces), and each
    `\\(...\\)` or `\\[...\\]` MathJax left alone, found in the text of `dom` outside
    <mjx-container>, <script>, <style>, <code> and <pre>."""
    parser = _Text()
    parser.feed(dom)
    parser.close()
    parser._flush()
    found = []
    for block in parser.blocks:
        found += [m.group(0) for m in _DOLLARS.finditer(block) if _TEX.search(m.group(1))]
        found += [m.group(0) for m in _DELIMITED.finditer(block)]
    return found


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def html_root(request) -> Path:
    """The built HTML to check: SSDLIB_BOOK_HTML if set, else the session's smoke build."""
    given = os.environ.get("SSDLIB_BOOK_HTML")
    if given:
        root = Path(given).resolve()
        assert (root / "index.html").is_file(), f"SSDLIB_BOOK_HTML={given} holds no index.html"
        return root
    return request.getfixturevalue("smoke_book").html


@pytest.fixture(scope="module")
def probed(html_root, chromium, tmp_path_factory):
    """probed(page) -> (layout report, DOM after MathJax) of a page, each page loaded once."""
    workdir = tmp_path_factory.mktemp("probes")
    cache: dict[str, tuple[dict, str]] = {}

    def probe(page: str) -> tuple[dict, str]:
        if page not in cache:
            cache[page] = probe_page(chromium, html_root / f"{page}.html", workdir)
        return cache[page]

    return probe


@pytest.fixture(scope="module")
def screenshots(html_root, chromium, probed):
    """screenshot(page) -> RGB array of the whole page at 1280 px, saved as build/screenshots/NAME.png."""
    cache: dict[str, np.ndarray] = {}

    def screenshot(page: str) -> np.ndarray:
        if page not in cache:
            height = min(max(int(probed(page)[0]["height"]), 900), MAX_HEIGHT)
            out = SCREENSHOTS / f"{NAMES[page]}.png"
            cache[page] = _screenshot(chromium, html_root / f"{page}.html", out, height)
        return cache[page]

    return screenshot


# ---------------------------------------------------------------------------- every page
def test_pages_are_the_books_chapters() -> None:
    assert PAGES[0] == "index" and "generated/environments" in PAGES and "bibliography" in PAGES
    assert len(set(NAMES.values())) == len(PAGES), "two pages would share a screenshot name"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_at_1280_px(screenshots, page: str) -> None:
    rgb = screenshots(page)
    assert (SCREENSHOTS / f"{NAMES[page]}.png").is_file()
    _assert_rendered_page(rgb)


@pytest.mark.parametrize("page", PAGES)
def test_nothing_is_cut_or_cramped_at_1280_px(probed, page: str) -> None:
    report, _ = probed(page)
    assert report["width"] == WIDTH and report["checked"] > 20, report
    assert report["page_width"] <= WIDTH, f"the page is {report['page_width']} px wide: it scrolls sideways"
    assert not report["overflow"], "wider than the main column, outside a scroll box:\n" + "\n".join(report["overflow"][:15])
    assert not report["cramped_cells"], "table cells without padding:\n" + "\n".join(report["cramped_cells"][:15])


@pytest.mark.parametrize("page", PAGES)
def test_no_raw_tex_outside_mathjax(probed, page: str) -> None:
    _, dom = probed(page)
    assert "<mjx-merror" not in dom, "MathJax reported a TeX error"
    found = raw_tex(dom)
    assert not found, f"TeX shown as plain text on {page}: {found[:10]}"


def test_pages_load_the_books_stylesheet(html_root) -> None:
    for page in PAGES:
        html = (html_root / f"{page}.html").read_text()
        assert re.search(r'<link[^>]*href="[^"]*_static/ssdlib\.css[^"]*"', html), f"{page} lacks ssdlib.css"
    css = (html_root / "_static" / "ssdlib.css").read_text()
    assert "overflow-x: auto" in css and "padding" in css


# ---------------------------------------------------------------------------- particular pages
def test_chapter_page_renders_with_its_figures(screenshots) -> None:
    rgb = screenshots("generated/environments")
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    apple_green = (g > 220) & (r < 60) & (b < 60)
    assert apple_green.sum() > 200, "the maps figure (green apples) is not on the page"


def test_experiment1_chapter_renders_with_its_curves(screenshots, html_root) -> None:
    rgb = screenshots("generated/experiment1")
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    influence_green = (abs(r - 0x02) < 40) & (abs(g - 0x9E) < 40) & (abs(b - 0x73) < 40)
    assert influence_green.sum() > 200, "the influence curves (green) of Figure 1 are not on the page"
    text = (html_root / "generated" / "experiment1.html").read_text()
    assert "Figure 1" in text and "Table 4" in text


def test_equations_are_typeset_offline(probed) -> None:
    _, dom = probed("index")
    assert "<mjx-container" in dom, "MathJax did not typeset the equations"
    assert "<mjx-merror" not in dom


# ---------------------------------------------------------------------------- the checks themselves
WIDE, LONG, SCROLLING = "wide " * 200, "long " * 200, "scrolling " * 200
PROBE_FIXTURE = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>probe</title></head><body style="margin:0">
<article class="bd-article" style="width:600px; padding:0 20px">
  <p>A paragraph that fits.</p>
  <div id="cut" style="overflow-x:hidden"><table><tr><td style="padding:0 6px; white-space:nowrap">{WIDE}</td></tr></table></div>
  <div id="spills"><pre style="overflow:visible; white-space:pre">{LONG}</pre></div>
  <div id="scrolls" style="overflow-x:auto"><table><tr><td style="padding:0 6px; white-space:nowrap">{SCROLLING}</td></tr></table></div>
  <table id="cramped"><tr><td style="padding:0">3.2e+05</td><td style="padding:0">2</td></tr></table>
</article></body></html>
"""


def test_layout_probe_finds_cut_spilling_and_cramped_content(chromium, tmp_path) -> None:
    page = tmp_path / "page.html"
    page.write_text(PROBE_FIXTURE)
    report, _ = probe_page(chromium, page, tmp_path)
    overflow = "\n".join(report["overflow"])
    assert "div#cut" in overflow, overflow  # content clipped by overflow: hidden
    assert "pre \"long" in overflow, overflow  # content spilling past the column
    assert "scrolling" not in overflow, overflow  # wide, but in a box that scrolls sideways
    assert report["column"] == [20, 620] and report["page_width"] > WIDTH
    assert len(report["cramped_cells"]) >= 2 and "3.2e+05" in report["cramped_cells"][0]


def test_raw_tex_finder() -> None:
    dom = (
        "<html><body><p>Rewards of $5 and $10.</p><p>The weight $\\beta$ and $x^2$ and $$a_i$$.</p>"
        '<mjx-container>$\\gamma$</mjx-container><code>$\\delta$</code><pre>$x_1$</pre>'
        '<script>var s = "$\\\\alpha$";</script><p>$y</p><p>_z$</p><p>left alone: \\(\\rho\\)</p></body></html>'
    )
    assert raw_tex(dom) == ["$\\beta$", "$x^2$", "$$a_i$$", "\\(\\rho\\)"]


# ---------------------------------------------------------------------------- figures at book width
# The text column is 676 px wide at 1280 px: figures are shown at most that wide, so their text
# must be big enough there, and no legend or title may sit on another's place or on the data.
def _boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_book_style_fonts_are_readable_at_book_width() -> None:
    import matplotlib.pyplot as plt

    from ssdlib.book import plotting

    with plt.rc_context():
        plotting.use_book_style()
        rc = plt.rcParams
        # an 11 in figure at 100 dpi is shown at 676 px: 13 pt is 11 px there
        assert min(rc["legend.fontsize"], rc["xtick.labelsize"], rc["ytick.labelsize"]) >= 13
        assert min(rc["axes.titlesize"], rc["axes.labelsize"], rc["figure.titlesize"]) >= 14
        colours = [c["color"] for c in rc["axes.prop_cycle"]]
        assert len(colours) == len(set(colours)), "a colour twice in the cycle"


def test_legend_below_shows_each_condition_once_outside_the_axes() -> None:
    import matplotlib.pyplot as plt

    from ssdlib.book import plotting

    with plt.rc_context():
        plotting.use_book_style()
        for layout in ("constrained", None):
            fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout=layout)
            try:
                for ax in axes:
                    for c in ("a3c", "visible", "influence"):
                        ax.plot([0, 1], [0, 1], color=plotting.condition_colour(c), label=c)
                    ax.legend()
                legend = plotting.legend_below(fig)
                assert [t.get_text() for t in legend.get_texts()] == ["a3c", "visible", "influence"]
                assert [h.get_color() for h in legend.legend_handles] == [
                    plotting.condition_colour(c) for c in ("a3c", "visible", "influence")]
                assert all(ax.get_legend() is None for ax in axes)
                fig.canvas.draw()
                box = legend.get_window_extent()
                assert not any(_boxes_overlap(box, ax.get_window_extent()) for ax in axes), layout
            finally:
                plt.close(fig)
    handles = plotting.condition_handles(["cleanup_influence", "harvest_influence", "a3c"],
                                         {"cleanup_influence": "influence"}, kind="patch")
    assert [h.get_label() for h in handles] == ["influence", "harvest_influence", "a3c"]
    with pytest.raises(ValueError, match="kind"):
        plotting.condition_handles(["a3c"], kind="dots")


def test_show_frames_titles_never_run_into_each_other() -> None:
    import matplotlib.pyplot as plt

    from ssdlib.book import plotting

    frames = [(title, np.zeros((25, 18, 3), np.uint8)) for title in
              ("before: waste (grey-blue) in the river", "after CLEAN #1", "after CLEAN #2", "after CLEAN #3")]
    with plt.rc_context():
        plotting.use_book_style()
        fig = plotting.show_frames(frames, suptitle="Agent 0 (blue, facing left) cleans waste with the cleaning "
                                                    "beam, stepping into the river between cleans.")
        try:
            fig.canvas.draw()
            titles = [ax.title.get_window_extent() for ax in fig.axes]
            assert not any(_boxes_overlap(a, b) for i, a in enumerate(titles) for b in titles[i + 1:])
            whole = fig.bbox
            for text in [ax.title for ax in fig.axes] + [fig._suptitle]:
                box = text.get_window_extent()
                assert box.x0 >= whole.x0 - 1 and box.x1 <= whole.x1 + 1, text.get_text()
        finally:
            plt.close(fig)


def _synthetic_episodes(height: int, width: int, agents: int, influencers: int, steps: int = 30):
    from ssdlib.envs.geometry import ACTION_NAMES
    from ssdlib.episodes.format import Episodes

    rng = np.random.default_rng(0)
    pos = np.stack([rng.integers(1, height - 1, (2, steps, agents)), rng.integers(1, width - 1, (2, steps, agents))], -1)
    rewards = np.zeros((2, steps, agents), np.float32)
    rewards[:, 3, :] = -50.0  # long titles: "r -50, return -1250"
    rewards[:, 4:, 0] = -50.0
    influence = rng.random((2, steps, influencers, agents - influencers)) * 1e-3
    return Episodes(
        config="cleanup_influence", env="cleanup", seeds=[3, 4], maps=np.zeros((2, steps, height, width), np.uint8),
        views=np.zeros((2, steps, agents, 15, 15), np.uint8), pos=pos.astype(np.int64),
        orient=np.zeros((2, steps, agents), np.int64), actions=np.full((2, steps, agents), 6, np.int64),
        rewards=rewards, influence=influence, exerted=influence, influencers=influencers,
        action_names=ACTION_NAMES[:9], preset="smoke",
    )


@pytest.mark.parametrize("shape", [(25, 18, 5, 1), (16, 38, 5, 3), (11, 11, 2, 1), (16, 38, 5, 0)],
                         ids=["cleanup", "harvest", "box_trapped", "no_influence"])
def test_explorer_panels_fit_the_text_column_and_keep_their_text_apart(shape) -> None:
    from ssdlib.book import explorer

    episodes = _synthetic_episodes(*shape)
    panels = explorer.EpisodePanels(episodes, 4, 29)
    fig = panels.fig
    assert fig.get_figwidth() * fig.dpi <= 676, "wider than the book's text column at 1280 px"
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    whole = fig.bbox
    titles = [ax.title for ax in panels.ax_views]
    texts = [panels.title, panels.subtitle, panels.ax_plot.title, panels.ax_plot.xaxis.label,
             panels.ax_plot.yaxis.label, *titles]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert whole.x0 - 1 <= box.x0 and box.x1 <= whole.x1 + 1 and box.y1 <= whole.y1 + 1, text.get_text()
        assert text.get_fontsize() * fig.dpi / 72 >= 12, f"{text.get_text()!r} is under 12 px"
    boxes = [t.get_window_extent(renderer) for t in titles]
    assert not any(_boxes_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), "view titles overlap"
    for box in boxes:  # nor do they sit on the map or on another view
        assert not any(_boxes_overlap(box, ax.get_window_extent(renderer)) for ax in [panels.ax_map, *panels.ax_views])
    legend = panels.ax_plot.get_legend().get_window_extent(renderer)
    assert not _boxes_overlap(legend, panels.ax_plot.get_window_extent(renderer)), "the legend covers the curves"
    assert legend.x1 <= whole.x1 + 1
    assert "training seed 4" in panels.title.get_text()
