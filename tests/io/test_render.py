"""Pictures of graphs: DOT text without graphviz, SVG/PNG/PDF with it, notebook displays."""

import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import twingraph as tg
from blocks.math import Gain
from twingraph import render

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="the graphviz 'dot' program is not installed")
SVG = "{http://www.w3.org/2000/svg}"


def _groups(svg_text: str, kind: str) -> dict[str, list[str]]:
    """Texts inside each SVG group of class ``kind`` ("node", "edge", "cluster"), by group title."""
    root = ET.fromstring(svg_text)
    groups = {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == kind:
            title = group.find(f"{SVG}title").text
            groups[title] = [t.text.strip() for t in group.iter(f"{SVG}text") if t.text and t.text.strip()]
    return groups


def test_dot_text_shows_ports_clusters_and_signals(loop):
    dot = loop.to_dot()
    assert "rankdir=LR" in dot
    assert "subgraph cluster_ctrl {" in dot
    assert 'PORT="in_u1"' in dot and 'PORT="in_u2"' in dot and 'PORT="out_y"' in dot
    assert 'err:out_y:e -> "ctrl/e":w [label="2 [m]"]' in dot  # shape and unit of a vector signal
    assert '"ctrl/pi":out_y:e -> "ctrl/u":w [label="2 [V]"]' in dot
    assert 'gain:out_y:e -> plant:in_u:w [label="2 [m/s]"]' in dot
    assert 'plant:out_y:s -> err:in_u2:s [label="2 [m]"]' in dot  # the feedback edge runs below
    assert (
        'r [label=<<B>r</B><BR/><FONT POINT-SIZE="9" COLOR="#444444">2 [m]</FONT>> fillcolor="#dcefd8" shape=cds' in dot
    )
    assert dot.count(f'BGCOLOR="{render.STATE_ONLY}" CELLPADDING') == 2  # the two integrators
    assert dot.count(f'BGCOLOR="{render.STATELESS}" CELLPADDING') == 4  # err, kp, pi, gain


def test_dot_needs_no_graphviz_program_but_render_says_how_to_install(loop, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "digraph loop {" in loop.to_dot()
    with pytest.raises(tg.TwinGraphError, match=r"needs the graphviz 'dot' program.*apt-get install graphviz"):
        loop.render(tmp_path / "g.svg")
    assert loop._repr_svg_() is None
    assert not (tmp_path / "g.svg").exists()


def test_incomplete_graph_still_draws():
    g = tg.Graph("wip")
    g.add(Gain(k=np.array([1.0, 2.0]), name="k"))
    g.add(tg.Output("y"))
    g.connect("k.y", "y.u")
    dot = g.to_dot()
    assert "k=array(2,)" in dot
    assert "k:out_y:e -> y:w" in dot


@needs_dot
def test_svg_of_a_six_block_graph_with_a_subsystem(loop, tmp_path):
    path = loop.render(tmp_path / "loop.svg")
    svg = path.read_text()
    nodes = _groups(svg, "node")
    assert set(nodes) == {"r", "err", "ctrl/e", "ctrl/kp", "ctrl/ki", "ctrl/pi", "ctrl/u", "gain", "plant", "y"}
    for name, block in [*loop.blocks.items(), *(("ctrl/" + n, b) for n, b in loop.blocks["ctrl"].blocks.items())]:
        if isinstance(block, tg.Graph):
            continue
        texts = nodes[name]
        assert name.split("/")[-1] in texts
        if not isinstance(block, (tg.Input, tg.Output)):
            assert type(block).type_name in texts
            for port in [*block.input_signals(), *block.output_signals(block.input_signals())]:
                assert port in texts, f"port '{port}' of '{name}' not drawn"
    assert set(_groups(svg, "cluster")) == {"cluster_ctrl"}
    assert _groups(svg, "cluster")["cluster_ctrl"][0] == "ctrl"
    assert len(_groups(svg, "edge")) == len(loop.connections) + len(loop.blocks["ctrl"].connections)
    assert sum(texts.count("2 [m]") for texts in _groups(svg, "edge").values()) == 6


@needs_dot
def test_png_and_pdf(loop, tmp_path):
    png = loop.render(tmp_path / "loop.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > 2 * height > 200  # a left-to-right diagram
    assert loop.render(tmp_path / "loop.out", format="pdf").read_bytes()[:5] == b"%PDF-"


def test_unknown_format(loop, tmp_path):
    with pytest.raises(tg.TwinGraphError, match=r"must be one of \('svg', 'png', 'pdf'\).*Got 'bmp' for"):
        loop.render(tmp_path / "loop.bmp")


@needs_dot
def test_notebook_display_of_a_graph(loop):
    svg = loop._repr_svg_()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "ctrl/kp" in _groups(svg, "node")


def test_notebook_display_of_a_history(loop):
    sim = tg.Simulator(loop)
    history = sim.run({"r": np.ones((30, 2))})
    html = history._repr_html_()
    assert html.startswith("<p>&lt;History: 30 ticks, 7 ports, batch 1&gt;; last ticks:</p>")
    assert "plant.y[1]" in html
    assert html.count("<tr") == 2 + 5  # column names, index name, the last 5 ticks
    for t in history.time[-5:]:
        assert f"<th>{t:.6g}</th>" in html
    assert f"<th>{history.time[-6]:.6g}</th>" not in html
    frame = history.to_pandas(last=5)
    np.testing.assert_array_equal(frame["plant.y[0]"].to_numpy(), history["plant.y"][-5:, 0])
    assert len(history.to_pandas(last=100)) == 30
