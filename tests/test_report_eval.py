"""Generic report helpers: escaping, self-contained pages, figures that handle missing cells."""

from __future__ import annotations

from pathlib import Path

from clca.report.figures import bar_chart_model_vs_human, esc, heatmap, html_page, html_table, img_tag

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_escaping_and_page() -> None:
    assert esc('<script>alert("x")</script>') == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    t = html_table(["a<b", "v"], [["<i>x</i>", 0.123456], ["y", None]])
    assert "&lt;i&gt;x&lt;/i&gt;" in t and "0.1235" in t and "–" in t and "<i>" not in t
    page = html_page("T <1>", t)
    assert (
        page.startswith("<!DOCTYPE html>") and "<title>T &lt;1&gt;</title>" in page and "<script" not in page
    )


def test_figures_write_pngs(tmp_path: Path) -> None:
    b = bar_chart_model_vs_human(
        tmp_path / "b.png",
        ["Very important", "Not at all"],
        {"human": [0.9, 0.1], "plain": [0.3, 0.7]},
        "Q1 — China",
    )
    h = heatmap(tmp_path / "h.png", [[0.1, None], [0.5, 0.9]], ["Q1", "Q2"], ["China", "Japan"], "JSD")
    for p in (b, h):
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 2000
    tag = img_tag(b, 'a "quoted" alt')
    assert tag.startswith('<img src="data:image/png;base64,iVBOR') and "&quot;quoted&quot;" in tag
