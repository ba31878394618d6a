"""`newsrag ingest --engine ray`: the ingest's preparation (chunking, sentences, dates, embedding)
runs on Ray workers; the driver reads the sources and commits.

The driver holds the index's write lock and commits each prepared batch through `Archive.ingest`,
so the index format, the single writer and the crash safety are those of a local ingest. Each
worker is a Ray actor that loads the model once and runs the local ingest's `Preparer` without a
store (it never touches the index, so workers need no access to the index folder; the price is
that the index's stored vectors are not reused, and a changed article is embedded anew).
"""

from __future__ import annotations

import os
import sys
from collections import deque
from typing import Callable, Iterator

from .archive import Archive
from .articles import Article, iter_sources
from .chunking import ChunkSettings
from .errors import IndexMismatch, InvalidInput
from .ingest import BatchPreparer, IngestReport, Preparer
from .store import PreparedArticle

LOCAL_CPUS = 2  # a local Ray instance (no --address) gets this many worker CPUs


def _ray(local: bool = False):
    """The `ray` module, or a clear error naming the extra that installs it.

    `local`: a Ray started here should listen on loopback only. Ray's switch for that (meant for
    single-machine OSX/Windows) is read when `ray` is first imported, so it is set before then."""
    if local and "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as exc:
        raise InvalidInput("the ray engine needs Ray: pip install 'newsrag[distributed]'") from exc
    return ray


class Worker:
    """A Ray actor's state: the model, loaded once, and a `Preparer` without a store."""

    def __init__(self, model: str, fingerprint: str, chunking: ChunkSettings):
        from .embedding import shared_embedder

        embedder = shared_embedder(model)
        if embedder.fingerprint != fingerprint:
            raise IndexMismatch(f"the weights of model {model!r} on this Ray worker differ from the driver's")
        self._preparer = Preparer(embedder, chunking)

    def prepare(self, articles: list[Article]) -> tuple[list[PreparedArticle], int, int]:
        """Prepared articles, with the chunk and truncated-chunk counts for the driver's report."""
        report = IngestReport()
        prepared = self._preparer.prepare(articles, report)
        return prepared, report.chunks, report.truncated_chunks


def ray_preparer(actors: list, window: int) -> BatchPreparer:
    """Batches dealt round-robin to the actors, at most `window` in flight, yielded in input order."""
    ray = _ray()

    def prepare(batches: Iterator[list[Article]], report: IngestReport) -> Iterator[list[PreparedArticle]]:
        in_flight: deque = deque()

        def collect() -> list[PreparedArticle]:
            prepared, chunks, truncated = ray.get(in_flight.popleft())
            report.chunks += chunks
            report.truncated_chunks += truncated
            return prepared

        for n, batch in enumerate(batches):
            if batch:
                in_flight.append(actors[n % len(actors)].prepare.remote(batch))
            while len(in_flight) >= window:
                yield collect()
        while in_flight:
            yield collect()

    return prepare


def ingest_with_ray(
    paths: list[str],
    index: str = "default",
    index_dir: str | None = None,
    address: str | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Ingest `paths` into `index` with preparation on a Ray cluster (`address`), or on a local
    loopback-only Ray instance when no address is given; one actor per worker CPU unless `workers`."""
    ray = _ray(local=not address)
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise InvalidInput(f"cannot join the Ray cluster at {address!r}: {exc}") from exc
        else:
            ray.init(address="local", num_cpus=LOCAL_CPUS, include_dashboard=False, log_to_driver=False)
    try:
        archive = Archive.open(index, index_dir, create=True)
        count = workers or max(1, int(ray.available_resources().get("CPU", 1)))
        actor = ray.remote(num_cpus=1)(Worker)
        actors = [actor.remote(archive.embedder.name, archive.embedder.fingerprint, archive.settings.chunking)
                  for _ in range(count)]
        try:
            return archive.ingest(iter_sources(paths), progress, ray_preparer(actors, 2 * count))
        finally:
            for a in actors:
                ray.kill(a)
    finally:
        if started_here:
            ray.shutdown()
