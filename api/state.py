"""The archives a server holds: the served index, plus others opened on demand by name."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from rag.archive import Archive
from rag.errors import IndexNotFound


@dataclass
class ServerState:
    """Open archives by name; `default` is the index named on the command line."""

    default: str
    index_dir: str | None
    host: str
    archives: dict[str, Archive] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def archive(self, name: str | None = None, create: bool = False) -> Archive:
        """The opened archive for `name`; raises IndexNotFound unless `create`."""
        name = name or self.default
        with self.lock:
            if name not in self.archives:
                self.archives[name] = Archive.open(name, self.index_dir, create=create)
            return self.archives[name]

    def loaded(self) -> bool:
        try:
            self.archive()
        except IndexNotFound:
            return False
        return True
