"""Time named in a question ("in October 2025", "last week", "yesterday") as a publication-date range.

A question about the archive looks back from `as_of` (the request's date, default today), so a
date without a year is the most recent one on or before `as_of`. Conventions:
- A day, month or year names that whole period; "since X" runs from X to `as_of`, "after X"
  from the day after X, "before X" up to the day before X, "until X" to the end of X.
- "this week" starts on Monday; "last week" is the previous Monday to Sunday; "the past N days"
  (weeks, months, years) is a rolling window ending on `as_of`; "N weeks ago" is that week.
- Several mentions widen to one range covering them all; the end is never after `as_of`.
- A question about the future ("will", "next week", "upcoming") narrows nothing: the articles
  that answer it were published before the time it names.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from .errors import InvalidInput
from .timewords import FUTURE_IN_QUESTION, NUMBER_WORDS, WEEKDAYS, count_number, month_number

AS_OF_RANGE = (date(1000, 1, 1), date(8999, 12, 31))

# Full month names in any case, except "may" (a verb) which must be capitalised; abbreviations
# capitalised, optionally with a full stop.
_MONTH = (r"(?P<month>(?i:january|february|march|april|june|july|august|september|october|november"
          r"|december)|May|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?)(?![a-z])")
_DAY = r"(?P<day>3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?(?!\d)"
_YEAR = r"(?P<year>(?:19|20)\d{2})(?!\d)"
_COUNT = r"(?P<count>\d{1,3}|" + "|".join(NUMBER_WORDS) + r")"
_UNIT = r"(?P<unit>day|week|month|year)s?"
_LEAD = r"(?P<lead>\b(?i:since|after|before|until|till|from|in|during|on|of|between|and|to)\s+)?"

_PATTERNS = [
    ("iso", re.compile(_LEAD + r"(?<![\w-])" + _YEAR + r"-(?P<mm>\d{2})-(?P<dd>\d{2})(?![\d-])")),
    ("month_day", re.compile(_LEAD + r"\b" + _MONTH + r"\s+" + _DAY + r"(?:,?\s+" + _YEAR + r")?")),
    ("day_month", re.compile(_LEAD + r"(?<![\w.,:/-])" + _DAY + r"\s+(?:of\s+)?" + _MONTH + r"(?:,?\s+" + _YEAR + r")?")),
    ("month_year", re.compile(_LEAD + r"\b" + _MONTH + r",?\s+(?:of\s+)?" + _YEAR)),
    ("month", re.compile(r"(?P<lead>\b(?i:since|after|before|until|till|from|in|during|of|between|and|to|last)\s+)"
                         + _MONTH + r"(?!\s+\d)")),
    ("year", re.compile(r"(?P<lead>\b(?i:since|after|before|until|till|from|in|during|of|between|and|to)\s+)"
                        + _YEAR + r"(?!\s*(?:%|(?i:percent)\b))")),
    ("day_word", re.compile(_LEAD + r"\b(?P<word>(?i:today|tonight|yesterday|this\s+(?:morning|afternoon|evening)))\b")),
    ("this_last", re.compile(_LEAD + r"(?<![Tt]he\s)\b(?P<relation>(?i:this|last))\s+(?P<unit>(?i:week|month|year))\b")),
    ("past_n", re.compile(r"(?i)\b(?:the\s+)?(?:past|last|previous)\s+(?:" + _COUNT + r"\s+)?" + _UNIT + r"\b")),
    ("ago", re.compile(r"(?i)\b" + _COUNT + r"\s+" + _UNIT + r"\s+ago\b")),
    ("weekday", re.compile(_LEAD + r"\b(?:(?P<relation>(?i:last))\s+)?(?P<weekday>(?i:monday|tuesday|wednesday"
                           r"|thursday|friday|saturday|sunday))\b")),
]
_BOUNDING = ("since", "after", "before", "until", "till", "last")  # lead words kept in the shown text

@dataclass(frozen=True)
class TimeFrame:
    """The words that named a time and the inclusive publication-date range they mean."""

    text: str
    date_from: str | None
    date_to: str

    def to_json(self) -> dict:
        return {"text": self.text, "date_from": self.date_from, "date_to": self.date_to}


def parse_as_of(value: str | None) -> date:
    """The request's `as_of` (ISO YYYY-MM-DD), default today; InvalidInput when malformed or outside
    AS_OF_RANGE, whose thousand years of headroom keep "999 years ago" or "after today" in the calendar."""
    if value is None:
        return date.today()
    try:
        day = date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"as_of {value!r} is not a date: use YYYY-MM-DD") from exc
    if not AS_OF_RANGE[0] <= day <= AS_OF_RANGE[1]:
        raise InvalidInput(f"as_of {value!r} is outside {AS_OF_RANGE[0].isoformat()} .. {AS_OF_RANGE[1].isoformat()}")
    return day


def find_timeframe(question: str, as_of: date) -> TimeFrame | None:
    """The publication-date range a question names, or None when it names none (or the future)."""
    if FUTURE_IN_QUESTION.search(question):
        return None
    found: list[tuple[int, int, date, date]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(question):
            start, end = match.span()
            if any(start < e and s < end for s, e in taken):
                continue
            try:
                period = _period(kind, match, as_of)
            except ValueError:  # a date the calendar cannot hold ("February 30")
                continue
            if period is None:
                continue
            first, last = _lead(match, period, as_of)
            lead = match.groupdict().get("lead") or ""
            text_start = start if lead.strip().lower() in _BOUNDING else start + len(lead)
            taken.append((start, end))
            found.append((text_start, end, first, last))
    if not found:
        return None
    first = min(f[2] for f in found)
    last = min(max(f[3] for f in found), as_of)
    if first > as_of or first > last:
        return None
    start, end = min(f[0] for f in found), max(f[1] for f in found)
    return TimeFrame(question[start:end], None if first == date.min else first.isoformat(), last.isoformat())


def _period(kind: str, m: re.Match, as_of: date) -> tuple[date, date] | None:
    """The whole period one match names, looking back from `as_of`."""
    if kind == "iso":
        day = date(int(m["year"]), int(m["mm"]), int(m["dd"]))
        return day, day
    if kind in ("month_day", "day_month"):
        month, day = month_number(m["month"]), int(m["day"])
        if m["year"]:
            found = date(int(m["year"]), month, day)
        else:
            found = _latest(lambda y: date(y, month, day), as_of)
        return found, found
    if kind == "month_year":
        return _month_range(int(m["year"]), month_number(m["month"]))
    if kind == "month":
        month = month_number(m["month"])
        year = as_of.year if month <= as_of.month else as_of.year - 1
        if (m["lead"] or "").strip().lower() == "last" and month == as_of.month:
            year -= 1
        return _month_range(year, month)
    if kind == "year":
        year = int(m["year"])
        return date(year, 1, 1), date(year, 12, 31)
    if kind == "day_word":
        day = as_of - timedelta(days=1 if m["word"].lower() == "yesterday" else 0)
        return day, day
    if kind == "this_last":
        return _this_or_last(m["relation"].lower(), m["unit"].lower(), as_of)
    if kind == "past_n":
        count = count_number(m["count"]) if m["count"] else 1
        return _shift(as_of, m["unit"].lower(), -count) + timedelta(days=1), as_of
    if kind == "ago":
        return _unit_containing(_shift(as_of, m["unit"].lower(), -count_number(m["count"])), m["unit"].lower())
    if kind == "weekday":
        back = (as_of.weekday() - WEEKDAYS.index(m["weekday"].capitalize())) % 7
        if m["relation"]:
            back = back or 7
        day = as_of - timedelta(days=back)
        return day, day
    return None


def _lead(m: re.Match, period: tuple[date, date], as_of: date) -> tuple[date, date]:
    """Apply since/after/before/until to a period."""
    first, last = period
    lead = (m.groupdict().get("lead") or "").strip().lower()
    if lead == "since":
        return first, as_of
    if lead == "after":
        return last + timedelta(days=1), as_of
    if lead == "before":
        return date.min, first - timedelta(days=1)
    if lead in ("until", "till"):
        return date.min, last
    return first, last


def _month_range(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _latest(make, as_of: date) -> date:
    """The latest date `make(year)` on or before `as_of` (this year or an earlier one)."""
    for year in range(as_of.year, as_of.year - 8, -1):
        try:
            found = make(year)
        except ValueError:  # 29 February in a common year
            continue
        if found <= as_of:
            return found
    raise ValueError("no such date in the last years")


def _shift(day: date, unit: str, count: int) -> date:
    """`day` moved by `count` days, weeks, months or years (month ends clamp)."""
    if unit == "day":
        return day + timedelta(days=count)
    if unit == "week":
        return day + timedelta(weeks=count)
    months = day.year * 12 + day.month - 1 + (count if unit == "month" else 12 * count)
    year, month = divmod(months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _unit_containing(day: date, unit: str) -> tuple[date, date]:
    """The calendar day, week (Monday to Sunday), month or year holding `day`."""
    if unit == "day":
        return day, day
    if unit == "week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    if unit == "month":
        return _month_range(day.year, day.month)
    return date(day.year, 1, 1), date(day.year, 12, 31)


def _this_or_last(relation: str, unit: str, as_of: date) -> tuple[date, date]:
    """This week/month/year (up to `as_of`) or the previous whole one."""
    if relation == "this":
        return _unit_containing(as_of, unit)[0], as_of
    return _unit_containing(_shift(as_of, unit, -1), unit)
