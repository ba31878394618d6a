"""Which near-duplicate detector, by measurement (issue 19): exact Jaccard of 5-word shingles (the
ceiling), our MinHash over numpy (rag/stories.py) at several sizes and band widths, datasketch's
MinHash and the simhash package's SimHash, on the labelled set's split (eval/stories.py): threshold
fitted on the fit half, stories' pair precision/recall on the test half, signature time per article.
Then the shipped settings on SciFact's 5,183 abstracts (distinct documents, none a reprint of another):
LSH candidates per article and any stories formed (each one a false positive at scale).

    pip install --target /tmp/study-libs --no-deps datasketch==2.0.0 simhash==2.1.2
    PYTHONPATH=/tmp/study-libs python -m research.stories_study [--scifact ../shared/eval/scifact/corpus.jsonl]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from eval.stories import SEED, THRESHOLDS, Labelled, load_labelled, score, split_events
from rag.stories import MinHasher, StorySettings, words

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "eval" / "scifact" / "corpus.jsonl"


def groups_at(ids: list[str], similar: np.ndarray, threshold: float) -> dict[str, int]:
    """Connected components of `similar >= threshold` (NaN: never compared)."""
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.nan_to_num(similar, nan=-1.0) >= threshold)):
        parent[root(int(i))] = root(int(j))
    return {aid: root(i) for i, aid in enumerate(ids)}


def fitted(rows: list[Labelled], similar: np.ndarray) -> tuple[float, list[float]]:
    ids = [r.id for r in rows]
    f1 = {t: score(rows, groups_at(ids, similar, t)).f1 for t in THRESHOLDS}
    best = [t for t in THRESHOLDS if f1[t] == max(f1.values())]
    return best[len(best) // 2], [best[0], best[-1]]


def matrix(rows: list[Labelled], signature: Callable[[str], object],
           similarity: Callable[[object, object], float]) -> tuple[np.ndarray, float]:
    """Pairwise similarities (upper triangle; NaN elsewhere) and the median ms per signature of 3 runs."""
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        signatures = [signature(r.text) for r in rows]
        runs.append((time.perf_counter() - started) * 1e3 / len(rows))
    out = np.full((len(rows), len(rows)), np.nan)
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            out[i, j] = similarity(signatures[i], signatures[j])
    return out, statistics.median(runs)


def methods() -> dict[str, tuple[Callable, Callable]]:
    """Name -> (signature of a text, similarity of two signatures)."""
    shingler = MinHasher()

    def exact(text):
        return set(shingler.shingles(text).tolist())

    out: dict[str, tuple[Callable, Callable]] = {
        "exact Jaccard (5-word shingles)": (exact, lambda a, b: len(a & b) / len(a | b) if a | b else 0.0)}
    for permutations, rows in ((64, 2), (128, 2), (256, 2), (128, 4)):
        hasher = MinHasher(StorySettings(permutations=permutations, band_rows=rows, threshold=0.0))
        # a pair never sharing a band is never compared (NaN), as in the store
        out[f"ours: MinHash {permutations}, LSH {permutations // rows}x{rows}"] = (
            hasher.signature,
            lambda a, b, h=hasher: h.similarity(a, b) if h.duplicates(a, b[None, :])[0] else float("nan"))
    try:
        from datasketch import MinHash
    except ImportError:
        MinHash = None
    if MinHash is not None:
        def datasketch_signature(text):
            found = words(text)
            m = MinHash(num_perm=128, seed=SEED)
            m.update_batch([" ".join(found[i: i + 5]).encode() for i in range(max(1, len(found) - 4))])
            return m

        out["datasketch 2.0.0: MinHash 128 (all pairs)"] = (datasketch_signature, lambda a, b: a.jaccard(b))
    try:
        from simhash import Simhash
    except ImportError:
        Simhash = None
    if Simhash is not None:
        def simhash_signature(text):
            found = words(text)
            return Simhash([" ".join(found[i: i + 5]) for i in range(max(1, len(found) - 4))], f=64)

        out["simhash 2.1.2: SimHash 64 (all pairs)"] = (simhash_signature, lambda a, b: 1 - a.distance(b) / 64)
    return out


def compare(seed: int) -> list[dict]:
    fit, test = split_events(load_labelled(), seed)
    out = []
    for name, (signature, similarity) in methods().items():
        fit_similar, ms = matrix(fit, signature, similarity)
        threshold, best = fitted(fit, fit_similar)
        test_similar, _ = matrix(test, signature, similarity)
        result = score(test, groups_at([r.id for r in test], test_similar, threshold))
        _, test_best = fitted(test, test_similar)
        out.append({"method": name, "threshold": threshold, "fit_best_range": best, "test_best_range": test_best,
                    "test_precision": round(result.precision, 4), "test_recall": round(result.recall, 4),
                    "ms_per_signature": round(ms, 3)})
    return out


def at_scale(path: Path, settings: StorySettings) -> dict:
    """The shipped settings over SciFact's abstracts: every story of two or more is a false positive."""
    docs = [json.loads(line) for line in open(path, encoding="utf-8")]
    texts = {str(d["_id"]): f"{d.get('title', '')}\n{d['text']}" for d in docs}
    out = {"documents": len(texts)}
    for rows in (2, 4):
        hasher = MinHasher(replace(settings, band_rows=rows))
        started = time.perf_counter()
        signatures = {k: hasher.signature(v) for k, v in texts.items()}
        elapsed = time.perf_counter() - started
        keys = hasher.band_keys(np.vstack(list(signatures.values())))
        candidates = 0
        for band in range(keys.shape[1]):
            _, counts = np.unique(keys[:, band], return_counts=True)
            candidates += int((counts * (counts - 1) // 2).sum())
        groups = [g for g in hasher.components(signatures) if len(g) > 1]
        out[f"LSH {hasher.settings.bands}x{rows}"] = {
            "ms_per_signature": round(elapsed * 1e3 / len(texts), 3),
            "candidate_pairs_per_document": round(2 * candidates / len(texts), 2),
            "stories_of_two_or_more": len(groups), "examples": groups[:5]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--scifact", type=Path, default=SCIFACT)
    args = parser.parse_args()
    print("| method | threshold (fit) | best F1 range fit / test | test precision | test recall | ms/signature |")
    print("|---|---|---|---|---|---|")
    for r in compare(args.seed):
        print(f"| {r['method']} | {r['threshold']} | {r['fit_best_range'][0]}-{r['fit_best_range'][1]} / "
              f"{r['test_best_range'][0]}-{r['test_best_range'][1]} | {r['test_precision']:.3f} | "
              f"{r['test_recall']:.3f} | {r['ms_per_signature']} |")
    if args.scifact.exists():
        print(json.dumps(at_scale(args.scifact, StorySettings()), indent=1))


if __name__ == "__main__":
    main()
