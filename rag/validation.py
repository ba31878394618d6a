"""Limits on what a caller may ask or send, shared by the CLI, the loaders and the API.

The limits are `Settings.limits` (rag/settings.py), read from the environment when this module is
imported (the server reads its settings at start-up). A bad question or `k` is `InvalidInput`; an
article or file over its limit is a `LoadError`, so loaders report it by name and go on with the rest.
"""

from __future__ import annotations

from .errors import InvalidInput, LoadError
from .settings import Settings

LIMITS = Settings.from_env().limits
MAX_QUESTION_CHARS = LIMITS.max_question_chars
MAX_K = LIMITS.max_k
MAX_BODY_BYTES = LIMITS.max_body_bytes
MAX_ARTICLES_PER_REQUEST = LIMITS.max_articles_per_request
MAX_ARTICLE_CHARS = LIMITS.max_article_chars
MAX_TITLE_CHARS = LIMITS.max_title_chars
MAX_FILE_BYTES = LIMITS.max_file_bytes


def validate_question(question: str, k: int) -> str:
    """The stripped question, or InvalidInput saying what is wrong with it or with k."""
    if not isinstance(question, str) or not question.strip():
        raise InvalidInput("question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInput(f"question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return question.strip()


def check_article_size(text: str) -> None:
    """LoadError when an article's text is over NEWSRAG_MAX_ARTICLE_CHARS."""
    if len(text) > MAX_ARTICLE_CHARS:
        raise LoadError(f"article text is {len(text)} characters; the limit is {MAX_ARTICLE_CHARS} "
                        f"(NEWSRAG_MAX_ARTICLE_CHARS)")


def check_title(title: str) -> None:
    """LoadError when a given title is over NEWSRAG_MAX_TITLE_CHARS (a long one would crowd every chunk's
    text out of its vector)."""
    if len(title) > MAX_TITLE_CHARS:
        raise LoadError(f"title is {len(title)} characters; the limit is {MAX_TITLE_CHARS} (NEWSRAG_MAX_TITLE_CHARS)")


def check_file_size(size: int) -> None:
    """LoadError when a source file is over NEWSRAG_MAX_FILE_BYTES (checked before reading it)."""
    if size > MAX_FILE_BYTES:
        raise LoadError(f"file is {size} bytes; the limit is {MAX_FILE_BYTES} (NEWSRAG_MAX_FILE_BYTES)")
