"""What a caller asks: `Query` (question, k, mode, filters, recency, as_of) and its `Filters`.

One typed value travels from the CLI, the API, the harness and a sharded front to the search
pipeline; it is checked once, where it is built, so nothing downstream re-validates.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date

from .errors import InvalidInput
from .timeframe import parse_as_of
from .validation import validate_question

MODES = ("dense", "bm25", "hybrid")
DEFAULT_MODE = "hybrid"
RECENCY = ("none", "prefer_recent")


def _bound(value: str | None, name: str, last: bool) -> str | None:
    """An ISO date bound from YYYY-MM-DD, YYYY-MM or YYYY: a month or year starts (or ends) it."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if len(text) == 4 and text.isdigit():
            return date(int(text), 12 if last else 1, 31 if last else 1).isoformat()
        if len(text) == 7 and text[4] == "-":
            year, month = int(text[:4]), int(text[5:])
            return date(year, month, calendar.monthrange(year, month)[1] if last else 1).isoformat()
        return date.fromisoformat(text).isoformat() if len(text) == 10 else _fail(text, name)
    except ValueError:
        return _fail(text, name)


def _fail(text: str, name: str):
    raise InvalidInput(f"{name} {text!r} is not a date: use YYYY-MM-DD (or YYYY-MM, YYYY)")


@dataclass(frozen=True)
class Filters:
    """Exact filters on article metadata; dates compare as dates, bounds inclusive.

    An article without a date fails any date bound unless `include_undated`. Bounds are
    normalised on construction (a month or year bound covers the whole period) and checked.
    """

    date_from: str | None = None
    date_to: str | None = None
    source: str | None = None
    article_ids: tuple[str, ...] | None = None
    include_undated: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "date_from", _bound(self.date_from, "date_from", last=False))
        object.__setattr__(self, "date_to", _bound(self.date_to, "date_to", last=True))
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidInput(f"date_from {self.date_from} is after date_to {self.date_to}")
        object.__setattr__(self, "source", self.source or None)
        object.__setattr__(self, "article_ids", tuple(self.article_ids) if self.article_ids else None)

    @classmethod
    def from_dict(cls, doc: dict | None) -> "Filters | None":
        """The API's `filters` object (or the shard protocol's, or a dataset's); None stays None."""
        if doc is None:
            return None
        unknown = set(doc) - {"date_from", "date_to", "source", "article_ids", "include_undated"}
        if unknown:
            raise InvalidInput(f"unknown filter {sorted(unknown)[0]!r}; use date_from, date_to, source, "
                               f"article_ids or include_undated")
        return cls(doc.get("date_from"), doc.get("date_to"), doc.get("source"), doc.get("article_ids"),
                   bool(doc.get("include_undated", False)))

    def to_json(self) -> dict:
        """Every field, normalised: what `from_dict` reads back to an equal value."""
        return {"date_from": self.date_from, "date_to": self.date_to, "source": self.source,
                "article_ids": list(self.article_ids) if self.article_ids else None,
                "include_undated": self.include_undated}

    def is_empty(self) -> bool:
        return not (self.date_from or self.date_to or self.source or self.article_ids)

    def has_dates(self) -> bool:
        return bool(self.date_from or self.date_to)

    def describe(self) -> dict:
        """The `retrieval.filters` block: only what is set."""
        out = {k: v for k, v in (("date_from", self.date_from), ("date_to", self.date_to), ("source", self.source),
                                 ("article_ids", list(self.article_ids) if self.article_ids else None)) if v}
        if self.has_dates():
            out["include_undated"] = self.include_undated
        return out


def check_mode(mode: str | None) -> str:
    """The mode to use, or an InvalidInput naming the valid ones."""
    mode = mode or DEFAULT_MODE
    if mode not in MODES:
        raise InvalidInput(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    return mode


def check_recency(recency: str | None) -> str:
    """The recency preference, or an InvalidInput naming the valid ones."""
    recency = recency or "none"
    if recency not in RECENCY:
        raise InvalidInput(f"unknown recency {recency!r}; use one of {', '.join(RECENCY)}")
    return recency


@dataclass(frozen=True)
class Query:
    """A checked question: stripped, k positive, a known mode and recency, `as_of` a date in range.
    (How many passages a caller may ask for, `Settings.limits.max_k`, is the API's and CLI's limit.)

    `as_of` (ISO date, default today) anchors times named in the question and the recency boost.
    """

    question: str
    k: int = 5
    mode: str = DEFAULT_MODE
    filters: Filters | None = None
    recency: str = "none"
    as_of: date = field(default_factory=date.today)
    dedupe: bool = True  # one passage group per story, the other outlets in `also_in`; False: every copy

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 1:
            raise InvalidInput(f"k must be a positive integer, got {self.k!r}")
        object.__setattr__(self, "question", validate_question(self.question, 1))
        object.__setattr__(self, "mode", check_mode(self.mode))
        object.__setattr__(self, "recency", check_recency(self.recency))
        if not isinstance(self.as_of, date):
            object.__setattr__(self, "as_of", parse_as_of(self.as_of))
        if isinstance(self.filters, dict):
            object.__setattr__(self, "filters", Filters.from_dict(self.filters))
        if not isinstance(self.dedupe, bool):
            raise InvalidInput(f"dedupe must be true or false, not {self.dedupe!r}")

    @classmethod
    def from_json(cls, doc: dict) -> "Query":
        """The `/answer` body's fields (an `index` field, if any, is the caller's business)."""
        return cls(doc.get("question"), doc.get("k", 5), doc.get("mode"), Filters.from_dict(doc.get("filters")),
                   doc.get("recency"), doc.get("as_of"), doc.get("dedupe", True))

    def to_json(self) -> dict:
        return {"question": self.question, "k": self.k, "mode": self.mode,
                "filters": self.filters.to_json() if self.filters else None, "recency": self.recency,
                "as_of": self.as_of.isoformat(), "dedupe": self.dedupe}
