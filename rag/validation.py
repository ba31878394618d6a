"""Limits on what a caller may ask, shared by the CLI and the API so both refuse the same input."""

from __future__ import annotations

import os

from .errors import InvalidInput

MAX_QUESTION_CHARS = int(os.environ.get("NEWSRAG_MAX_QUESTION_CHARS", "1000"))
MAX_K = int(os.environ.get("NEWSRAG_MAX_K", "50"))


def validate_question(question: str, k: int) -> str:
    """The stripped question, or InvalidInput saying what is wrong with it or with k."""
    if not isinstance(question, str) or not question.strip():
        raise InvalidInput("question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInput(f"question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return question.strip()
