"""Specific exceptions raised by the library; the API maps each `code` to an HTTP status."""


class NewsragError(Exception):
    """Base class: every error carries a stable machine-readable `code`."""

    code = "newsrag_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(NewsragError):
    """A question, parameter or article that cannot be accepted as given."""

    code = "invalid_input"


class TooLarge(NewsragError):
    """A request, article or batch over a configured size limit."""

    code = "too_large"


class IndexNotFound(NewsragError):
    """The named index does not exist on disk."""

    code = "index_not_found"


class EmptyIndex(NewsragError):
    """The index exists but holds no chunks to search."""

    code = "empty_index"


class IndexMismatch(NewsragError):
    """The index was built with another model, format or chunker than the one asked for."""

    code = "index_mismatch"


class IndexLocked(NewsragError):
    """Another process holds the index's write lock."""

    code = "index_locked"


class ArticleNotFound(NewsragError):
    """No article with that id in the index."""

    code = "article_not_found"


class LoadError(NewsragError):
    """A source file could not be read as an article (unreadable, not UTF-8, malformed)."""

    code = "load_error"
