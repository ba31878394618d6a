"""What kind of answer a question asks for, read from its wording with a few rules.

The type steers answer selection: "when" wants a date, "who" a person or organisation, "where" a
place, "how many" a count, "how much" an amount. The rules give a coarse type plus the question's
wh-word and focus noun ("which *river*"); how much each matters is learned (rag/spans.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DATE, PERSON, PLACE, COUNT, AMOUNT, PERCENT, DURATION, AGE, NAME, REASON, MANNER, THING = (
    "date", "person", "place", "count", "amount", "percent", "duration", "age", "name", "reason",
    "manner", "thing")

_WH = re.compile(r"\b(what|which|who|whom|whose|when|where|why|how)\b", re.I)
_TIME_NOUNS = {"year", "years", "date", "day", "month", "century", "decade", "time", "era", "period",
               "season", "week", "hour", "dates", "centuries", "decades", "months", "days"}
_PLACE_NOUNS = {"country", "city", "state", "place", "location", "region", "town", "continent",
                "area", "island", "river", "county", "province", "nation", "countries", "cities",
                "states", "places", "site", "capital", "village", "street", "building", "district"}
_PERSON_NOUNS = {"person", "people", "man", "woman", "president", "king", "leader", "author",
                 "player", "scientist", "emperor", "queen", "individual", "artist", "writer",
                 "minister", "official", "governor", "pope", "ruler", "general", "coach", "director"}
_GROUP_NOUNS = {"company", "organization", "organisation", "group", "team", "party", "agency",
                "university", "school", "institution", "network", "band", "club", "firm", "body",
                "government", "newspaper", "church", "bank", "court", "army"}
_SKIP = {"is", "was", "are", "were", "do", "does", "did", "the", "a", "an", "kind", "type", "sort",
         "of", "has", "had", "have", "can", "could", "would", "will", "should", "many", "much"}
_WORD = re.compile(r"[A-Za-z]+")
# The entity labels (spaCy's) of a span that can answer each kind of question; a sentence holding none
# of them rarely answers (a feature of sentence selection, rag/answering.py).
FITTING_LABELS = {
    DATE: frozenset({"DATE", "TIME"}),
    PERSON: frozenset({"PERSON", "ORG", "NORP"}),
    PLACE: frozenset({"GPE", "LOC", "FAC"}),
    COUNT: frozenset({"CARDINAL", "QUANTITY"}),
    AMOUNT: frozenset({"MONEY", "QUANTITY", "CARDINAL", "PERCENT"}),
    PERCENT: frozenset({"PERCENT"}),
    DURATION: frozenset({"DATE", "TIME", "CARDINAL"}),
    AGE: frozenset({"DATE", "CARDINAL"}),
    NAME: frozenset({"PERSON", "ORG", "WORK_OF_ART", "PRODUCT", "EVENT", "GPE", "LOC", "FAC"}),
}


@dataclass(frozen=True)
class QuestionType:
    """The expected answer class, the wh-word that led to it, and the focus noun if any."""

    kind: str
    wh: str
    focus: str = ""


def classify(question: str) -> QuestionType:
    """The answer type a question asks for (THING when nothing more specific fits)."""
    text = question.strip()
    lower = text.lower()
    match = _WH.search(text)
    wh = match.group(1).lower() if match else ""
    after = [w.lower() for w in _WORD.findall(text[match.end():])] if match else []
    if wh == "how":
        return QuestionType(_how(after), wh)
    if wh in ("who", "whom", "whose"):
        return QuestionType(PERSON, wh)
    if wh == "when":
        return QuestionType(DATE, wh)
    if wh == "where":
        return QuestionType(PLACE, wh)
    if wh == "why":
        return QuestionType(REASON, wh)
    focus = next((w for w in after if w not in _SKIP), "") if wh in ("what", "which") else ""
    if "percent" in lower or "percentage" in lower:
        return QuestionType(PERCENT, wh, focus)
    if focus in _TIME_NOUNS:
        return QuestionType(DATE, wh, focus)
    if focus in _PLACE_NOUNS:
        return QuestionType(PLACE, wh, focus)
    if focus in _PERSON_NOUNS or focus in _GROUP_NOUNS:
        return QuestionType(PERSON, wh, focus)
    if focus in ("name", "called", "named"):
        return QuestionType(NAME, wh, focus)
    return QuestionType(THING, wh, focus)


def _how(after: list[str]) -> str:
    """The type of a "how ..." question from the word after "how"."""
    nxt = after[0] if after else ""
    if nxt == "many":
        return COUNT
    if nxt == "much":
        return AMOUNT
    if nxt == "old":
        return AGE
    if nxt == "long":
        return DURATION
    if nxt in ("far", "big", "large", "tall", "high", "deep", "wide", "fast", "heavy", "often",
               "small", "hot", "cold", "few"):
        return AMOUNT
    return MANNER
