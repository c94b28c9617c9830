"""The comic layout on its own: pages, tiers, reading direction, lettering that does not fit."""

from __future__ import annotations

import re

from creativeflow.documents.fonts import text_width
from creativeflow.stories.publishing.layout import (
    ChapterSpec,
    ComicLayout,
    ComicSpec,
    Frame,
    Lettering,
    Page,
    PanelSpec,
    Picture,
    TextLine,
    wrap,
)


def panels(*sizes: str | None) -> tuple[PanelSpec, ...]:
    return tuple(PanelSpec(f"P{n}", size, image=f"{n:064x}") for n, size in enumerate(sizes, 1))


def lay_out(*chapters: tuple[PanelSpec, ...], direction: str = "ltr") -> list[Page]:
    spec = ComicSpec(
        "Title",
        reading_direction=direction,
        chapters=tuple(ChapterSpec(n, f"C{n}", None, p) for n, p in enumerate(chapters, 1)),
    )
    return list(ComicLayout(spec).pages())


def pictures(page: Page) -> list[tuple[str, float, float]]:
    """(key's number, x, y) of each picture on the page, in drawing order."""
    return [
        (str(int(op.key, 16)), round(op.rect.x), round(op.rect.y))
        for op in page.operations
        if isinstance(op, Picture)
    ]


def test_each_chapter_opens_on_its_own_page_after_the_title_page() -> None:
    pages = lay_out(panels("half"), panels("half"))

    assert len(pages) == 5  # title, chapter 1, its panel, chapter 2, its panel
    assert [p.number for p in pages] == [1, 2, 3, 4, 5]
    texts = [[op.text for op in page.operations if isinstance(op, TextLine)] for page in pages]
    assert "C1" in texts[1] and "C2" in texts[3]


def test_panels_fill_tiers_then_pages_and_a_splash_is_alone() -> None:
    pages = lay_out(panels("third", "third", "third", "full_width", "full_width", "splash", "half"))

    tiers = pages[2]
    placed = pictures(tiers)
    assert [key for key, _, _ in placed] == ["1", "2", "3", "4", "5"]
    xs = [x for _, x, _ in placed[:3]]
    ys = {y for _, _, y in placed[:3]}
    assert xs == sorted(xs) and len(ys) == 1  # one tier, left to right
    assert [key for key, _, _ in pictures(pages[3])] == ["6"]
    assert [key for key, _, _ in pictures(pages[4])] == ["7"]


def test_right_to_left_mirrors_each_tier() -> None:
    ltr = pictures(lay_out(panels("third", "third", "third"))[2])
    rtl = pictures(lay_out(panels("third", "third", "third"), direction="rtl")[2])

    assert [x for _, x, _ in rtl] == sorted((x for _, x, _ in rtl), reverse=True)
    assert sorted(x for _, x, _ in ltr) == sorted(x for _, x, _ in rtl)


def test_frames_stay_inside_the_page_margins() -> None:
    for page in lay_out(panels(*["quarter", "third", None, "inset", "half"] * 6)):
        for op in page.operations:
            if isinstance(op, Frame | Picture):
                assert op.rect.x >= 0 and op.rect.x + op.rect.w <= page.width + 0.01
                assert op.rect.y >= 0 and op.rect.y + op.rect.h <= page.height + 0.01


def test_wrap_keeps_lines_within_the_width_and_breaks_long_words() -> None:
    lines = wrap("a" * 80 + " short words here", 8, 60)

    assert all(text_width(line, 8) <= 60 for line in lines)
    assert "".join(lines).replace(" ", "") == "a" * 80 + "shortwordshere"


def test_lettering_that_does_not_fit_shrinks_then_is_cut_with_a_warning() -> None:
    roomy = ComicSpec(
        "T",
        chapters=(
            ChapterSpec(
                1, "C", None, (PanelSpec("P", "splash", lettering=(Lettering("speech", "Hi"),)),)
            ),
        ),
    )
    crowded = ComicSpec(
        "T",
        chapters=(
            ChapterSpec(
                1,
                "C",
                None,
                (PanelSpec("P1", "inset", lettering=(Lettering("speech", "word " * 300),) * 5),),
            ),
        ),
    )
    fine, cut = ComicLayout(roomy), ComicLayout(crowded)
    list(fine.pages())
    pages = list(cut.pages())

    assert fine.warnings == []
    [warning] = cut.warnings
    assert re.fullmatch(
        r"P1: the dialogue was cut to fit the panel \([1-4] of 5 bubbles shown\)", warning
    )
    lines = [op for op in pages[2].operations if isinstance(op, TextLine) and op.text != "3"]
    assert lines[-1].text.endswith("…") and min(op.size for op in lines) >= 4.5
