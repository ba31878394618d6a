"""Generated short news-like articles (fixed seed) for the crash and concurrency tests.

Plain English words keep the model's input short, so hundreds of articles embed in seconds; each
article names a unique made-up place, so a query can find it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

_SYLLABLES = ("ka", "lo", "mir", "ten", "sa", "vel", "dor", "ni", "bra", "quo", "zen", "tal")
_SUBJECTS = ("The council", "The mayor", "A local school", "The river authority", "Farmers", "The museum")
_VERBS = ("opened", "announced", "closed", "repaired", "approved", "rejected", "measured", "funded")
_OBJECTS = ("a new bridge", "the old library", "a bus route", "the harbour wall", "a water plan", "the market")
_WHEN = ("on Monday", "last week", "in spring", "after a long debate", "before the election")


def articles(n: int, seed: int, prefix: str = "syn") -> list[dict]:
    """`n` dated two-sentence articles as ingest records, ids `{prefix}-0000` on."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        place = "".join(rng.choice(_SYLLABLES) for _ in range(3)).capitalize() + str(i)
        text = (f"{rng.choice(_SUBJECTS)} of {place} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_WHEN)}. "
                f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_WHEN)}.")
        out.append({"id": f"{prefix}-{i:04d}", "title": f"News from {place}", "source": "Synthetic",
                    "date": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", "text": text})
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """The records as an ingest JSONL file."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
