"""Chunk offsets always slice the article exactly; chunks fit the model; sentences split sensibly."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings, strategies as st

from rag.chunking import _ABBREV as ABBREVIATIONS, ChunkSettings, chunk_text, count_tokens, split_sentences
from rag.embedding import shared_embedder

WORDS = st.sampled_from(["Putin", "visit", "Dec.", "Mr.", "U.S.", "5", "percent", "the", "said", "\u2019s",
                         "caf\u00e9", "\u201cquoted\u201d", "a" * 40, "\n\n", "\n", "  ", "!", "?", "."])
TEXTS = st.lists(WORDS, min_size=0, max_size=400).map(" ".join) | st.text(max_size=3000)


@settings(max_examples=150, deadline=None)
@given(text=TEXTS, target=st.integers(8, 300), overlap=st.integers(0, 80))
def test_chunk_offsets_slice_the_text_exactly(text, target, overlap):
    chunks = chunk_text("a", text, ChunkSettings(target, overlap))
    for i, chunk in enumerate(chunks):
        assert text[chunk.start:chunk.end] == chunk.text
        assert chunk.ordinal == i and chunk.text.strip()
    if text.strip():
        assert chunks, "non-blank text yields at least one chunk"
        covered = set()
        for c in chunks:
            covered.update(range(c.start, c.end))
        assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


@settings(max_examples=60, deadline=None)
@given(text=TEXTS)
def test_sentences_are_trimmed_ordered_spans(text):
    spans = split_sentences(text)
    for (s, e), nxt in zip(spans, spans[1:] + [(len(text), len(text))]):
        assert s < e <= nxt[0]
        assert text[s:e] == text[s:e].strip()


def test_sentence_splitter_keeps_abbreviations_and_breaks_paragraphs():
    text = "Mr. Lavrov met U.S. officials on Dec. 5 in New Delhi. Talks went well!\n\nA new paragraph"
    spans = [text[s:e] for s, e in split_sentences(text)]
    assert spans == ["Mr. Lavrov met U.S. officials on Dec. 5 in New Delhi.", "Talks went well!", "A new paragraph"]


def test_chunks_respect_the_token_budget_and_the_models_limit():
    embedder = shared_embedder()
    sentence = "The minister said the deal, worth 4.2 billion rupees, would be signed around December 5. "
    text = sentence * 60 + "x" * 3000  # many sentences plus one unbreakable run of letters
    limit = embedder.max_tokens
    chunks = chunk_text("a", text, ChunkSettings(160, 40), lambda t: embedder.count_model_tokens(t) <= limit)
    assert len(chunks) > 5
    assert all(embedder.count_model_tokens(c.text) <= limit for c in chunks)
    assert all(count_tokens(c.text) <= 160 for c in chunks[:-1] if "x" * 50 not in c.text)
    assert chunks[1].start < chunks[0].end, "consecutive chunks overlap"


def reference_sentences(text: str) -> list[tuple[int, int]]:
    """The splitting rule written the slow, obvious way: every full stop looks at all the text before it."""
    spans, cursor = [], 0

    def add(s: int, e: int) -> None:
        piece = text[s:e]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((s + lead, s + lead + len(piece.strip())))

    for m in re.finditer(r"[.!?][\"'\u201d\u2019)\]]*(?=\s)|\n\s*\n", text):
        if m.group().startswith("."):
            word = re.search(r"[A-Za-z][A-Za-z.]*\Z", text[:m.start()])
            name = word.group().lower().rstrip(".") if word else ""
            if name in ABBREVIATIONS or (len(name) == 1 and name.isalpha()):
                continue
        add(cursor, m.end())
        cursor = m.end()
    add(cursor, len(text))
    return spans


TRICKY = st.sampled_from(["Mr.", "U.S.", "e.g.", "a.", "x.y.z.", "..", ".", "Dec.", "caf\u00e9.", "\u00e9.", "No.",
                          "end.", "\u201cquoted.\u201d", "(aside.)", "!", "?", "\n", "\n\n", " ", "\t", "A", "1."])
SPLITTER_TEXTS = st.lists(TRICKY, max_size=120).map("".join) | st.lists(TRICKY, max_size=120).map(" ".join) | TEXTS


@settings(max_examples=300, deadline=None)
@given(text=SPLITTER_TEXTS)
def test_splitter_spans_equal_the_reference_rule(text):
    assert split_sentences(text) == reference_sentences(text)


@pytest.mark.timeout(120)
def test_splitting_and_chunking_are_linear_in_the_text():
    """Issue 13 D1: 60,000 chars of 'a. ' took 47 s (each full stop re-read the text before it); a 1M-char
    run without spaces was cut into pieces by re-reading the rest each time."""
    count_tokens("warm up the tokenizer")
    started = time.perf_counter()
    assert len(split_sentences("a. " * 333_334)) == 1  # single letters read as initials: one sentence
    assert time.perf_counter() - started < 10
    started = time.perf_counter()
    chunks = chunk_text("long", "x" * 1_000_000, ChunkSettings(160, 40))
    assert "".join(c.text for c in chunks) == "x" * 1_000_000
    assert time.perf_counter() - started < 40
