"""Tests for rag.dates: spans, resolution against the publication date, and no false positives."""

from __future__ import annotations

import re
import time
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.dates import DateMention, find_dates
from rag.errors import InvalidInput

PUB = "2025-10-07"  # a Tuesday


def found(text: str, published: str | None = PUB) -> list[tuple[str, str, bool]]:
    """(text, resolved, approximate) for each mention, checking offsets on the way."""
    mentions = find_dates(text, published)
    for mention in mentions:
        assert text[mention.start : mention.end] == mention.text
    return [(m.text, m.resolved, m.approximate) for m in mentions]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("around December 5", [("around December 5", "2025-12-05", True)]),
        ("early August", [("early August", "2025-08", True)]),
        ("September 17", [("September 17", "2025-09-17", False)]),
        ("on 5 December 2025", [("5 December 2025", "2025-12-05", False)]),
        ("Dec. 5", [("Dec. 5", "2025-12-05", False)]),
        ("2025-12-05", [("2025-12-05", "2025-12-05", False)]),
        ("December 2025", [("December 2025", "2025-12", False)]),
        ("in 2021", [("2021", "2021", False)]),
        ("February 2022", [("February 2022", "2022-02", False)]),
        ("Tuesday", [("Tuesday", "2025-10-07", False)]),
        ("on Tuesday", [("Tuesday", "2025-10-07", False)]),
        ("today", [("today", "2025-10-07", False)]),
        ("yesterday", [("yesterday", "2025-10-06", False)]),
        ("tomorrow", [("tomorrow", "2025-10-08", False)]),
        ("this month", [("this month", "2025-10", False)]),
        ("next month", [("next month", "2025-11", False)]),
        ("last month", [("last month", "2025-09", False)]),
        ("this year", [("this year", "2025", False)]),
        ("later this year", [("later this year", "2025", True)]),
        ("next year", [("next year", "2026", False)]),
        ("last week", [("last week", "2025-09-29", True)]),
        ("next week", [("next week", "2025-10-13", True)]),
        ("two months ahead", [("two months ahead", "2025-12", True)]),
        ("in two months", [("in two months", "2025-12", True)]),
        ("two months ago", [("two months ago", "2025-08", True)]),
    ],
)
def test_brief_examples(text: str, expected: list[tuple[str, str, bool]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Putin is expected to visit India around December 5 and the two sides are working"
            " on a range of deliverables",
            [("around December 5", "2025-12-05", True)],
        ),
        (
            "Putin called up Modi on September 17 to greet him on his birthday",
            [("September 17", "2025-09-17", False)],
        ),
        (
            "Russian foreign minister Sergey Lavrov is expected to travel to New Delhi next month",
            [("next month", "2025-11", True)],  # approximate: "expected"
        ),
        ("Putin last visited India in 2021", [("2021", "2021", False)]),
        (
            "PM Modi invited President Vladimir Putin for the 23rd India-Russia Annual Summit"
            " later this year",
            [("later this year", "2025", True)],
        ),
        (
            "India and Russia pledged to deepen their strategic partnership on Tuesday",
            [("Tuesday", "2025-10-07", False)],
        ),
    ],
)
def test_real_sentences(text: str, expected: list[tuple[str, str, bool]]) -> None:
    assert found(text) == expected


def test_offsets_point_into_the_sentence() -> None:
    text = "Putin is expected to visit India around December 5 and the two sides are working"
    assert find_dates(text, PUB) == [
        DateMention("around December 5", 33, 50, "2025-12-05", True)
    ]


@pytest.mark.parametrize(
    ("text", "resolved"),
    [
        ("It happened on March 3", "2026-03-03"),  # five months ahead beats seven back
        ("It happened on May 3", "2025-05-03"),
        ("The deal was signed on January 20", "2026-01-20"),
        ("The vote is on April 8", "2025-04-08"),
        ("The vote was in April", "2025-04"),  # six months either way, past: back
        ("The vote will be in April", "2026-04"),  # the same tie, future: forward
        ("in March", "2026-03"),
        ("in July", "2025-07"),
    ],
)
def test_dates_without_a_year_take_the_nearest_one(text: str, resolved: str) -> None:
    assert [r for _, r, _ in found(text)] == [resolved]


@pytest.mark.parametrize(
    ("text", "resolved"),
    [
        ("Officials met on Wednesday", "2025-10-01"),
        ("Officials met on Monday", "2025-10-06"),
        ("Officials will meet on Monday", "2025-10-13"),
        ("Officials will meet on Tuesday", "2025-10-07"),
        ("Officials are expected to meet on Friday", "2025-10-10"),
        ("They meet next Tuesday", "2025-10-14"),
        ("They met last Tuesday", "2025-09-30"),
        ("They met last Monday", "2025-10-06"),
        ("They meet this coming Sunday", "2025-10-12"),
        ("Modi will travel to Moscow, officials said on Monday", "2025-10-06"),  # tense is local
    ],
)
def test_weekdays(text: str, resolved: str) -> None:
    assert [r for _, r, _ in found(text)] == [resolved]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Monday, October 6, 2025", [("Monday, October 6, 2025", "2025-10-06", False)]),
        ("December 5th, 2025", [("December 5th, 2025", "2025-12-05", False)]),
        ("the 5th of May", [("5th of May", "2025-05-05", False)]),
        (
            "Sept. 17 and Sep 17th",
            [("Sept. 17", "2025-09-17", False), ("Sep 17th", "2025-09-17", False)],
        ),
        ("in mid-December", [("mid-December", "2025-12", True)]),
        ("by 2030", [("by 2030", "2030", True)]),
        ("early next year", [("early next year", "2026", True)]),
        ("the end of this month", [("the end of this month", "2025-10", True)]),
        ("last December", [("last December", "2024-12", False)]),
        ("next March", [("next March", "2026-03", False)]),
        ("in the summer of 2024", [("2024", "2024", False)]),
        ("between 2019 and 2021", [("2019", "2019", False), ("2021", "2021", False)]),
        ("from April to June", [("April", "2025-04", False), ("June", "2025-06", False)]),
        ("a year ago", [("a year ago", "2024", True)]),
        ("three days ago", [("three days ago", "2025-10-04", False)]),
        ("in 2 weeks", [("in 2 weeks", "2025-10-20", True)]),
        ("Today's talks", [("Today", "2025-10-07", False)]),
        ("2025-10-07T10:00:00Z", [("2025-10-07", "2025-10-07", False)]),
    ],
)
def test_other_forms(text: str, expected: list[tuple[str, str, bool]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "He celebrated his 73rd birthday",
        "the 23rd summit",
        "growth of 2.5 percent",
        "prices may rise",
        "May I ask a question?",
        "Theresa May spoke",
        "August Wilson wrote plays",
        "a total of 2,000 people",
        "rates fell to 2025 points",
        "over the last year",
        "in two years of war",
        "finished two months ahead of schedule",
        "Results are in 1,500 homes and 2019-20 figures",
        "The March on Washington",
        "2025-13-45",
    ],
)
def test_no_false_positives(text: str) -> None:
    assert found(text) == []


def test_without_publication_date_only_absolute_dates_resolve() -> None:
    text = "around December 5 on Tuesday, in 2021, next month, on 5 December 2025, in May 2024"
    assert found(text, None) == [
        ("2021", "2021", False),
        ("5 December 2025", "2025-12-05", False),
        ("May 2024", "2024-05", False),
    ]


def test_published_may_be_a_datetime() -> None:
    assert found("yesterday", "2025-10-07T08:30:00+00:00") == [("yesterday", "2025-10-06", False)]


def test_bad_publication_date_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        find_dates("yesterday", "07/10/2025")


def test_fast_enough_for_ingest() -> None:
    sentence = (
        "Putin is expected to visit India around December 5 and the two sides are working on"
        " a range of deliverables, officials familiar with the matter said on Tuesday."
    )
    runs = 500
    began = time.perf_counter()
    for _ in range(runs):
        find_dates(sentence, PUB)
    assert (time.perf_counter() - began) / runs < 0.002  # measured ~0.1 ms; generous for CI


_FRAGMENTS = st.sampled_from(
    [
        "around ", "early ", "mid-", "by ", "in ", "on ", "since ", "the end of ", "last ",
        "next ", "this ", "December", "Dec.", "May", "5", "17th", "2025", "2021", "-", ",",
        "2025-12-05", "Tuesday", "today", "month", "year", "week", "two months ago",
        "in two months", " ", ".", "of ", "and ", "expected ", "will ", "2.5", "73rd",
    ]
)  # fmt: skip
_TEXT = st.lists(_FRAGMENTS | st.text(max_size=8), max_size=25).map("".join)
_PUBLISHED = st.none() | st.dates().map(lambda d: d.isoformat())
_ISO = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


@settings(max_examples=300)
@given(text=_TEXT, published=_PUBLISHED)
def test_mentions_are_exact_ordered_and_disjoint(text: str, published: str | None) -> None:
    mentions = find_dates(text, published)
    previous_end = 0
    for mention in mentions:
        assert text[mention.start : mention.end] == mention.text
        assert mention.text
        assert mention.start >= previous_end
        assert _ISO.fullmatch(mention.resolved)
        previous_end = mention.end


FULL_FORMATS = ["%B %d, %Y", "%d %B %Y", "%b %d, %Y", "%Y-%m-%d", "%A, %B %d, %Y", "%B %Y", "%b. %d, %Y"]


@settings(max_examples=150, deadline=None)
@given(day=st.dates(min_value=date(1950, 1, 1), max_value=date(2049, 12, 31)),
       form=st.sampled_from(FULL_FORMATS), published=st.sampled_from([PUB, "2019-02-28", None]))
def test_fully_stated_dates_agree_with_dateparser(day, form, published):
    """dateparser, an independent parser, reads every fully stated date the same way we resolve it."""
    import dateparser

    written = day.strftime(form).replace("May.", "May")
    mentions = find_dates(f"The hearing was moved to {written} after a request.", published)
    assert [m.text for m in mentions] == [written]
    theirs = dateparser.parse(written, languages=["en"], settings={"STRICT_PARSING": "%d" in form,
                                                                     "PREFER_DAY_OF_MONTH": "first"})
    assert mentions[0].resolved == theirs.date().isoformat()[: 7 if "%d" not in form else 10]
