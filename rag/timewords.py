"""The calendar's words, shared by dates in articles (dates.py) and times in questions (timeframe.py):
month and weekday names, counted numbers, and the marks of the future."""

from __future__ import annotations

import re

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}


def month_number(name: str) -> int:
    """1-12 from a month's name or its abbreviation ("Sept", "dec."), in any case."""
    return [m[:3].lower() for m in MONTHS].index(name.rstrip(".")[:3].lower()) + 1


def count_number(word: str) -> int:
    """A count written in digits or as a word ("two weeks ago")."""
    return int(word) if word.isdigit() else NUMBER_WORDS[word.lower()]


_NEXT = r"next\s+(?:week|month|year|" + "|".join(WEEKDAYS) + r")"
_PLANNED = r"(?:is|are)\s+(?:expected|scheduled|set|due|slated|poised|going)\s+to|plans?\s+to|upcoming"
# In an article's clause: "will" in lower case only (a capitalised "Will" there is often a name).
FUTURE_IN_TEXT = re.compile(r"\b(?:will|shall|won't)\b|['’]ll\b|\b(?i:" + _PLANNED + "|" + _NEXT + r")\b")
# In a question: any case ("Will Putin visit...?"), and what a question about the future also says
# ("expected to", "tomorrow", "in the coming weeks").
FUTURE_IN_QUESTION = re.compile(
    r"(?i)\b(?:will|shall|won't|going\s+to|expected\s+to|scheduled\s+to|" + _PLANNED + "|" + _NEXT
    + r"|tomorrow|coming\s+(?:week|month|year|days|weeks|months))\b|['’]ll\b")
