"""Limits on what a caller may ask or send, shared by the CLI, the loaders and the API.

Each limit has a default and an environment setting, read when the module is imported (the server
reads its settings at start-up). A bad question or `k` is `InvalidInput`; an article or file over its
limit is a `LoadError`, so loaders report it by name and go on with the rest.
"""

from __future__ import annotations

import os

from .errors import InvalidInput, LoadError


def env_int(name: str, default: int) -> int:
    """A positive integer setting from the environment; a bad value fails at start-up, naming it."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise InvalidInput(f"{name}={raw!r} is not an integer") from None
    if value < 1:
        raise InvalidInput(f"{name}={raw!r} must be at least 1")
    return value


MAX_QUESTION_CHARS = env_int("NEWSRAG_MAX_QUESTION_CHARS", 1000)
MAX_K = env_int("NEWSRAG_MAX_K", 50)
MAX_BODY_BYTES = env_int("NEWSRAG_MAX_BODY_BYTES", 10 * 1024 * 1024)
MAX_ARTICLES_PER_REQUEST = env_int("NEWSRAG_MAX_ARTICLES_PER_REQUEST", 1000)
MAX_ARTICLE_CHARS = env_int("NEWSRAG_MAX_ARTICLE_CHARS", 1_000_000)
# The title is embedded with every chunk: 300 characters (~70 tokens) leave the model room for the chunk.
MAX_TITLE_CHARS = env_int("NEWSRAG_MAX_TITLE_CHARS", 300)
MAX_FILE_BYTES = env_int("NEWSRAG_MAX_FILE_BYTES", 256 * 1024 * 1024)


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
