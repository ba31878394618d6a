"""Date expressions in news sentences: exact character spans, resolved against the publication date.

Spans come from our own regexes over month names, weekdays and relative phrases; the captured
parts (month, day, year, count, unit) are resolved with plain calendar arithmetic. `dateparser`
is not used on this path: each `dateparser.parse` costs ~0.5 ms and `dateparser.search` gives
imprecise spans, while this runs over every sentence at ingest. It reads article dates given in
full (`rag/articles.py`) and is the independent check on fully stated dates here (tests/test_dates.py).

Conventions, for a sentence published on date P:
- `resolved` is "YYYY-MM-DD", "YYYY-MM" or "YYYY", at the precision the expression states.
- A date's clause is the text before it back to the nearest , ; : or bracket (at most 80
  characters); it speaks of the future when it holds "will", "is expected to", "plans to", ...
- A month-day or month without a year takes the year that puts it nearest P (within six
  months); an exact tie goes forward in a future clause, else back.
- A bare weekday ("Tuesday", "on Tuesday") is the most recent such day on or before P, or the
  first on or after P in a future clause ("Modi will go, officials said on Monday": the Monday
  is past). "last Tuesday" is strictly before P, "next Tuesday" strictly after.
- Weeks resolve to their Monday and are approximate.
- `approximate` is set by a qualifier directly before the expression, which joins the span
  ("around December 5", "early August", "later this year", "by 2030", "mid-December"), by a
  hedge word such as "expected" or "likely" in its clause, and for counted weeks, months and
  years ("two months ago", "in two years").
- Month names, weekdays and abbreviations are case-sensitive. A month or a year standing alone
  needs a context word before it ("in May", "since 2019", "summer of 2024", "2019 and 2021"),
  so "May" the verb, "73rd", "2.5 percent" or "2,000" are never dates.
- With no publication date, anything that needs it (relative phrases, weekdays, a month-day
  or month without a year) is skipped; fully stated dates still resolve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

from .errors import InvalidInput
from .timewords import FUTURE_IN_TEXT, NUMBER_WORDS, WEEKDAYS, count_number, month_number

_MONTH = (
    r"(?P<month>January|February|March|April|May|June|July|August|September|October|November"
    r"|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\b"
)
# The full stop after an abbreviated month ("Dec. 5"), never after a full name or "May".
_ABBREVIATION_DOT = r"(?:(?<=Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\.|(?<=Sept)\.)?"
_WEEKDAY = r"(?P<weekday>" + "|".join(WEEKDAYS) + r")\b"
_DAY = r"(?P<day>3[01]|[12]\d|0?[1-9])(?!\d)(?:st|nd|rd|th)?(?!\w|[.:,]\d)"
_YEAR = r"(?P<year>[12]\d{3})(?!\w|[.,-]\d)"
_COUNT = r"(?P<count>" + "|".join(NUMBER_WORDS) + r"|\d{1,2})\s+(?P<unit>day|week|month|year)s?"
_QUALIFIERS = (
    r"around|about|roughly|approximately|circa|early|mid|late|earlier|later|by"
    r"|(?:the\s+)?(?:end|beginning|start|middle)\s+of"
)

# A qualifier directly before a date: makes it approximate and joins its span.
_QUALIFIER_BEFORE = re.compile(r"\b(?:(?i:" + _QUALIFIERS + r")(?:\s+|-))+\Z")
# What must precede a month or year standing alone for it to count as a date.
_CONTEXT_BEFORE = re.compile(
    r"(?:\b(?i:in|since|until|till|from|during|through|throughout|before|after|between"
    r"|(?:half|quarter|summer|winter|spring|autumn|fall|rest|remainder|part|turn)\s+of)"
    r"|(?:\b[12]\d{3}|" + _MONTH + r")\s+(?i:to|and|or|through|until))\s+\Z"
)
_HEDGE_BEFORE = re.compile(
    r"\b(?i:expected|expects|expecting|likely|tentatively|estimated|possibly|probably)\b"
)
_CLAUSE_MARKS = ",;:()"
_CLAUSE_WINDOW = 80
_QUALIFIER_WINDOW = 40

_DATED = r"(?:\b" + _WEEKDAY + r",?\s+)?"  # "Tuesday, October 7": the weekday adds nothing
_NO_DAY_AFTER = r"(?!" + _ABBREVIATION_DOT + r"\s+\d)"
_ISO_DATE = re.compile(r"(?<![\w-])(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?![\d-])")
_DAY_MONTH = re.compile(
    _DATED + r"(?<![\w.,:/-])" + _DAY + r"\s+(?:of\s+)?" + _MONTH
    + r"(?:" + _ABBREVIATION_DOT + r",?\s+" + _YEAR + r")?"
)
_MONTH_DAY = re.compile(
    _DATED + r"\b" + _MONTH + _ABBREVIATION_DOT + r"\s+" + _DAY + r"(?:,?\s+" + _YEAR + r")?"
)
_MONTH_YEAR = re.compile(r"\b" + _MONTH + _ABBREVIATION_DOT + r",?\s+(?:of\s+)?" + _YEAR)
_RELATIVE_MONTH = re.compile(
    r"\b(?P<relation>(?i:last|next|this|coming))\s+" + _MONTH + _NO_DAY_AFTER
)
_BARE_MONTH = re.compile(r"\b" + _MONTH + _NO_DAY_AFTER)
_BARE_YEAR = re.compile(
    r"(?<![\w.,$£€#])(?<!\d-)" + _YEAR + r"(?!\s*(?:%|(?i:percent|per\s+cent)\b))"
)
_WEEKDAY_MENTION = re.compile(
    r"\b(?:(?P<relation>(?i:last|next|this\s+coming|this|coming))\s+)?" + _WEEKDAY
)
_DAY_WORD = re.compile(
    r"\b(?P<word>(?i:today|tonight|yesterday|tomorrow|this\s+(?:morning|afternoon|evening)))\b"
)
_THIS_PERIOD = re.compile(  # not "the last year", which means the past twelve months
    r"(?<![Tt]he\s)\b(?P<relation>(?i:this|next|last))\s+(?P<unit>(?i:week|month|year))\b"
)
_COUNTED_AGO = re.compile(  # not "two months ahead of schedule"
    r"(?i)\b" + _COUNT + r"\s+(?P<direction>ago|ahead|from\s+now|hence)\b(?!\s+of\b)"
)
_COUNTED_IN = re.compile(  # not "in two years of war", counted from something else
    r"(?i)\b(?P<direction>in|within)\s+" + _COUNT
    + r"\b(?!\s+(?:of|old|ago|earlier|later|before|after)\b)"
)


@dataclass(frozen=True)
class DateMention:
    """One date expression: `text == sentence[start:end]`; `resolved` is ISO, as precise as said."""

    text: str
    start: int
    end: int
    resolved: str
    approximate: bool


Resolved = tuple[str, bool] | None
Resolver = Callable[[re.Match, date | None, bool], Resolved]


def _month_number(match: re.Match) -> int:
    """The month captured by a pattern, from its name or its digits."""
    month = match["month"]
    return int(month) if month.isdigit() else month_number(month)


def _iso_month(year: int, month: int) -> str:
    """ISO year-month, rejecting years the calendar cannot hold."""
    date(year, month, 1)
    return f"{year:04d}-{month:02d}"


def _iso_year(year: int) -> str:
    """ISO year, rejecting years the calendar cannot hold."""
    date(year, 1, 1)
    return f"{year:04d}"


def _shift_months(day: date, months: int) -> tuple[int, int]:
    """(year, month) `months` calendar months away from `day`."""
    year, index = divmod(day.year * 12 + day.month - 1 + months, 12)
    return year, index + 1


def _monday(day: date) -> date:
    """The Monday of `day`'s week: how weeks are resolved."""
    return day - timedelta(days=day.weekday())


def _nearest(offsets: list[int], future: bool) -> int:
    """The offset nearest zero; a tie goes forward when speaking of the future, else back."""
    return min(offsets, key=lambda offset: (abs(offset), offset < 0 if future else offset > 0))


def _day_date(match: re.Match, published: date | None, future: bool) -> Resolved:
    """A stated day: ISO dates, "5 December 2025", "Dec. 5"; the year may come from `published`."""
    month, day = _month_number(match), int(match["day"])
    if match["year"]:
        return date(int(match["year"]), month, day).isoformat(), False
    if published is None:
        return None
    candidates = []
    for year in range(published.year - 1, published.year + 2):
        try:
            candidates.append(date(year, month, day))
        except ValueError:
            continue
    if not candidates:
        return None
    offsets = {(candidate - published).days: candidate for candidate in candidates}
    return offsets[_nearest(list(offsets), future)].isoformat(), False


def _month_of_year(match: re.Match, published: date | None, future: bool) -> Resolved:
    """A month with its year: "December 2025", "Feb. 2022"."""
    return _iso_month(int(match["year"]), _month_number(match)), False


def _month_alone(match: re.Match, published: date | None, future: bool) -> Resolved:
    """A month without a year ("in August", "last December"), placed relative to `published`."""
    if published is None:
        return None
    month, relation = _month_number(match), (match.groupdict().get("relation") or "").lower()
    if relation == "this":
        return _iso_month(published.year, month), False
    back = (published.month - month) % 12 or (12 if relation == "last" else 0)
    ahead = (month - published.month) % 12 or (12 if relation == "next" else 0)
    if relation == "last":
        offset = -back
    elif relation in ("next", "coming"):
        offset = ahead
    else:
        offset = _nearest([-back, ahead], future)
    return _iso_month(*_shift_months(published, offset)), False


def _year_alone(match: re.Match, published: date | None, future: bool) -> Resolved:
    """A year with a context word before it: "in 2021", "since 2019"."""
    return _iso_year(int(match["year"])), False


def _weekday(match: re.Match, published: date | None, future: bool) -> Resolved:
    """A weekday, read in the publication week by the convention in the module docstring."""
    if published is None:
        return None
    relation = " ".join((match["relation"] or "").lower().split())
    target = WEEKDAYS.index(match["weekday"])
    back = (published.weekday() - target) % 7
    ahead = (target - published.weekday()) % 7
    if relation == "last":
        offset = -(back or 7)
    elif relation == "next":
        offset = ahead or 7
    elif future or relation in ("coming", "this coming"):
        offset = ahead
    else:
        offset = -back
    return (published + timedelta(days=offset)).isoformat(), False


def _day_word(match: re.Match, published: date | None, future: bool) -> Resolved:
    """Today (also tonight, this morning), yesterday or tomorrow."""
    if published is None:
        return None
    offset = {"yesterday": -1, "tomorrow": 1}.get(match["word"].lower(), 0)
    return (published + timedelta(days=offset)).isoformat(), False


def _this_period(match: re.Match, published: date | None, future: bool) -> Resolved:
    """This, next or last week, month or year; weeks are approximate."""
    if published is None:
        return None
    offset = {"this": 0, "next": 1, "last": -1}[match["relation"].lower()]
    unit = match["unit"].lower()
    if unit == "week":
        return (_monday(published) + timedelta(weeks=offset)).isoformat(), True
    if unit == "month":
        return _iso_month(*_shift_months(published, offset)), False
    return _iso_year(published.year + offset), False


def _counted(match: re.Match, published: date | None, future: bool) -> Resolved:
    """Counted periods: two months ago, in two months, two months ahead, within a year."""
    if published is None:
        return None
    count = count_number(match["count"])
    direction = (match["direction"] or "").lower()
    if direction == "ago":
        count = -count
    unit = match["unit"].lower()
    if unit == "day":
        return (published + timedelta(days=count)).isoformat(), direction == "within"
    if unit == "week":
        return _monday(published + timedelta(weeks=count)).isoformat(), True
    if unit == "month":
        return _iso_month(*_shift_months(published, count)), True
    return _iso_year(published.year + count), True


# (pattern, resolver, whether it needs a context word or qualifier before it)
_PATTERNS: list[tuple[re.Pattern, Resolver, bool]] = [
    (_ISO_DATE, _day_date, False),
    (_DAY_MONTH, _day_date, False),
    (_MONTH_DAY, _day_date, False),
    (_MONTH_YEAR, _month_of_year, False),
    (_RELATIVE_MONTH, _month_alone, False),
    (_BARE_MONTH, _month_alone, True),
    (_BARE_YEAR, _year_alone, True),
    (_WEEKDAY_MENTION, _weekday, False),
    (_DAY_WORD, _day_word, False),
    (_THIS_PERIOD, _this_period, False),
    (_COUNTED_AGO, _counted, False),
    (_COUNTED_IN, _counted, False),
]


def _clause_start(text: str, start: int) -> int:
    """Where the clause before `start` begins (within a window): tense and hedges are read there."""
    low = max(0, start - _CLAUSE_WINDOW)
    return max(low, *(text.rfind(mark, low, start) + 1 for mark in _CLAUSE_MARKS))


def _parse_published(published: str | None) -> date | None:
    """The publication date from an ISO date or datetime string; None when absent."""
    if not published:
        return None
    try:
        return date.fromisoformat(published[:10])
    except ValueError as exc:
        raise InvalidInput(f"published date {published!r} is not ISO YYYY-MM-DD") from exc


def find_dates(text: str, published: str | None) -> list[DateMention]:
    """All date expressions in `text`, resolved against `published` (ISO date or None), in order."""
    pub = _parse_published(published)
    candidates: list[tuple[int, int, str, bool]] = []
    for pattern, resolve, needs_context in _PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            qualifier = _QUALIFIER_BEFORE.search(text, max(0, start - _QUALIFIER_WINDOW), start)
            if needs_context and not (
                qualifier or _CONTEXT_BEFORE.search(text, max(0, start - _QUALIFIER_WINDOW), start)
            ):
                continue
            clause = _clause_start(text, start)
            future = bool(FUTURE_IN_TEXT.search(text, clause, start))
            try:
                resolved = resolve(match, pub, future)
            except (ValueError, OverflowError):  # a date the calendar cannot hold
                continue
            if resolved is None:
                continue
            value, approximate = resolved
            if qualifier:
                start, approximate = qualifier.start(), True
            elif _HEDGE_BEFORE.search(text, clause, start):
                approximate = True
            candidates.append((start, end, value, approximate))
    mentions: list[DateMention] = []
    for start, end, value, approximate in sorted(candidates, key=lambda c: (c[0], -c[1])):
        if not mentions or start >= mentions[-1].end:
            mentions.append(DateMention(text[start:end], start, end, value, approximate))
    return mentions
