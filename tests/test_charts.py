"""app.charts: well-formed, accessible, escaped inline SVG (pure; no database)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from decimal import Decimal

import pytest

from app.charts import (
    LABEL_MARGIN,
    OTHER_COLOR,
    OUTCOME_PALETTE,
    PALETTE,
    Bar,
    Series,
    horizontal_bar_chart,
    line_chart,
    nice_step,
    push_timeline_chart,
    stacked_bar_chart,
    text_width,
)
from app.formatting import format_usd
from app.pages import OUTCOME_COLORS, model_color

SVG = "{http://www.w3.org/2000/svg}"
NASTY = "</title><script>alert('x')</script> & \"q\""


def _parse(markup: str) -> ET.Element:
    root = ET.fromstring(markup)
    assert root.tag == f"{SVG}svg"
    return root


def _texts(root: ET.Element, tag: str) -> list[str]:
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}{tag}")]


def _stacked(**overrides: object) -> str:
    arguments: dict[str, object] = {
        "chart_id": "c1",
        "title": "Spend by day",
        "desc": "Spend per day by model",
        "labels": ["10-05", "10-06", "10-07"],
        "series": [Series("sonnet", [Decimal("1.2"), Decimal("2.5"), 0]), Series("gpt-5", [0, Decimal("0.8"), 0])],
        "fmt": format_usd,
    }
    arguments.update(overrides)
    return stacked_bar_chart(**arguments)  # type: ignore[arg-type]


CHARTS: dict[str, Callable[[], str]] = {
    "stacked": _stacked,
    "line": lambda: line_chart(
        chart_id="c2",
        title="Cost per line",
        desc="By week",
        labels=["w1", "w2", "w3", "w4"],
        values=[Decimal("0.005"), None, Decimal("0.004"), Decimal("0.006")],
        series_name="cost per changed line",
        fmt=format_usd,
    ),
    "bars": lambda: horizontal_bar_chart(
        chart_id="c3",
        title="By outcome",
        desc="Spend by outcome",
        bars=[Bar("merged", Decimal("2.25"), "#009E73", "2 PRs"), Bar("closed", Decimal(3))],
        fmt=format_usd,
    ),
    "timeline": lambda: push_timeline_chart(
        chart_id="c4",
        title="Cost between pushes",
        desc="Per push",
        bars=[Bar("1111111", Decimal("0.1")), Bar("bbbbbbb", Decimal(2))],
        fmt=format_usd,
    ),
}


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_every_chart_is_accessible_svg(name: str) -> None:
    markup = CHARTS[name]()
    root = _parse(markup)
    assert root.get("role") == "img"
    labelled_by = (root.get("aria-labelledby") or "").split()
    ids = {node.get("id"): node for node in root.iter() if node.get("id")}
    assert labelled_by and all(ident in ids for ident in labelled_by)
    title = root.find(f"{SVG}title")
    assert title is not None and title.text and title.get("id") in labelled_by
    assert root.find(f"{SVG}desc") is not None
    assert root.get("viewBox")
    assert "<script" not in markup and "href" not in markup and "http://" not in markup.replace(SVG[1:-1], "")
    # every mark says what it is: a tooltip on each rect/circle drawn for data
    marks = [n for n in root.iter() if n.tag in (f"{SVG}rect", f"{SVG}circle") and n.find(f"{SVG}title") is not None]
    assert marks


def test_stacked_bars_have_a_legend_and_one_segment_per_value() -> None:
    root = _parse(_stacked())
    texts = _texts(root, "text")
    assert "sonnet" in texts and "gpt-5" in texts
    tips = _texts(root, "title")[1:]
    assert "10-06 · gpt-5: $0.80" in tips
    assert "10-05 · sonnet: $1.20" in tips
    assert len(tips) == 3  # zero values draw nothing
    assert "$4.00" in texts  # a round axis above the tallest column ($3.30)


def test_colours_come_from_the_palette_in_order() -> None:
    markup = _stacked()
    assert PALETTE[0] in markup and PALETTE[1] in markup
    assert PALETTE[0] == "#0072B2"  # Okabe–Ito


def test_text_is_escaped_everywhere() -> None:
    markup = _stacked(title=NASTY, desc=NASTY, labels=[NASTY], series=[Series(NASTY, [Decimal(1)])])
    root = _parse(markup)
    assert root.find(f"{SVG}title").text == NASTY  # type: ignore[union-attr]
    assert "<script>" not in markup
    bars = horizontal_bar_chart(chart_id='x"y', title=NASTY, desc="d", bars=[Bar(NASTY, 1, note=NASTY)])
    root = _parse(bars)
    assert root.get("aria-labelledby") == 'x"y-title x"y-desc'
    assert any(NASTY[:20] in text for text in _texts(root, "text"))
    assert "<script>" not in bars


@pytest.mark.parametrize(
    "markup",
    [
        _stacked(labels=[], series=[]),
        _stacked(series=[Series("a", [0, 0, 0])]),
        line_chart(chart_id="e", title="T", desc="", labels=["a"], values=[None], series_name="s"),
        horizontal_bar_chart(chart_id="e", title="T", desc="", bars=[]),
        push_timeline_chart(chart_id="e", title="T", desc="", bars=[Bar("x", 0)]),
    ],
)
def test_empty_data_gives_a_titled_svg_saying_so(markup: str) -> None:
    root = _parse(markup)
    assert root.find(f"{SVG}title").text == "T" or root.find(f"{SVG}title").text == "Spend by day"  # type: ignore[union-attr]
    assert "No data in this period" in _texts(root, "text")
    assert root.find(f"{SVG}desc").text  # type: ignore[union-attr]


def test_line_chart_leaves_gaps_for_missing_weeks() -> None:
    root = _parse(CHARTS["line"]())
    lines = list(root.iter(f"{SVG}polyline"))
    assert len(lines) == 1  # w1 stands alone before the gap; w3–w4 are joined
    assert len(lines[0].get("points", "").split()) == 2
    assert len(list(root.iter(f"{SVG}circle"))) == 3


def test_timeline_draws_the_running_total() -> None:
    root = _parse(CHARTS["timeline"]())
    tips = _texts(root, "title")
    assert "1111111: $0.10" in tips
    assert "after bbbbbbb: $2.10 in all" in tips
    assert "running total" in _texts(root, "text")


def test_long_labels_are_shortened_but_kept_whole_in_tooltips() -> None:
    label = "a-very-long-branch-name-that-goes-on-and-on"
    root = _parse(horizontal_bar_chart(chart_id="b", title="T", desc="d", bars=[Bar(label, 1)]))
    assert any(text.endswith("…") for text in _texts(root, "text"))
    assert any(label in tip for tip in _texts(root, "title"))


@pytest.mark.parametrize(
    ("maximum", "step"), [(0, 1.0), (3.3, 1.0), (0.0062, 0.002), (9.99, 2.5), (120, 50), (1, 0.25)]
)
def test_nice_step(maximum: float, step: float) -> None:
    assert nice_step(maximum) == pytest.approx(step)


# --- labels that fit, colours that mean one thing (issue 12 §4.4) ----------------------------------------------


def _labelled(root: ET.Element) -> dict[str, str]:
    """Shown text → full text, for every elided text (its group's <title> holds the whole)."""
    pairs = {}
    for group in root.iter(f"{SVG}g"):
        title, text = group.find(f"{SVG}title"), group.find(f"{SVG}text")
        if title is not None and text is not None:
            pairs["".join(text.itertext())] = title.text or ""
    return pairs


def test_a_long_bar_label_is_elided_to_its_margin_with_the_whole_in_a_title() -> None:
    label = "widgets:spike/vector-search (default)"
    root = _parse(horizontal_bar_chart(chart_id="b", title="T", desc="d", bars=[Bar(label, 1), Bar("main", 2)]))
    pairs = _labelled(root)
    shown = next(s for s, full in pairs.items() if full == label)
    assert shown.endswith("…") and label.startswith(shown[:-1])
    assert text_width(shown, 13) <= LABEL_MARGIN - 8
    assert "main" in _texts(root, "text")  # a short label is shown whole, with no title of its own
    assert "main" not in pairs.values()


def test_x_labels_fit_their_column_with_the_whole_in_a_title() -> None:
    bars = [Bar(f"{i:07x}", Decimal(1)) for i in range(11)] + [Bar("after the last push", Decimal(1))]
    root = _parse(push_timeline_chart(chart_id="t", title="T", desc="d", bars=bars, fmt=format_usd))
    pairs = _labelled(root)
    assert "after the last push" in pairs.values()
    for shown in pairs:  # every other column is labelled: a label has two columns of room
        assert shown.endswith("…") and text_width(shown, 12) <= (720 - 70) / len(bars) * 2


def test_a_long_legend_name_keeps_its_whole_name_in_a_title() -> None:
    name = "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0-with-a-long-suffix"
    root = _parse(_stacked(series=[Series(name, [1, 2, 3])]))
    assert name in _labelled(root).values()


def test_outcome_colours_are_not_model_colours() -> None:
    assert set(OUTCOME_PALETTE).isdisjoint({*PALETTE, OTHER_COLOR})
    assert len(set(OUTCOME_COLORS.values())) == len(OUTCOME_COLORS) and set(OUTCOME_COLORS.values()) <= set(
        OUTCOME_PALETTE
    )


@pytest.mark.parametrize(
    "spelling", ["claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5", "claude-sonnet-4-5@20250929"]
)
def test_a_model_has_one_colour_whatever_its_spelling(spelling: str) -> None:
    assert model_color(spelling) == model_color("claude-sonnet-4-5")
