"""Score the story detector (rag/stories.py) on our labelled set, `tests/data/stories/labelled.jsonl`
(hand-written articles and their reprints, built by research/stories_data.py):

    python -m eval.stories [--seed 19] [--out DIR]

The set's events are split into two halves with a fixed seed. The threshold is fitted on one half
(the best pair F1 of the stories it makes; the middle of the best range) and precision and recall are
reported on the other half at the shipped settings, through the shipped path: the articles written
with `Store.write`, stories placed as at ingest. A true pair is two copies of one story (an original
and its reprints); a predicted pair is two articles given one story. Rewrites, follow-ups and
same-style stories of one event are different stories, so pairing them is a false positive.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from dataclasses import dataclass, field, replace
from itertools import combinations
from pathlib import Path

import numpy as np

from rag.articles import Article
from rag.stories import MinHasher, StorySettings
from rag.store import PreparedArticle, Store

LABELLED = Path(__file__).resolve().parents[1] / "tests" / "data" / "stories" / "labelled.jsonl"
SEED = 19
THRESHOLDS = [round(t, 2) for t in np.arange(0.05, 0.96, 0.01)]


@dataclass(frozen=True)
class Labelled:
    """One article of the set and the story it belongs to (reprints share their original's)."""

    id: str
    title: str
    date: str
    source: str
    text: str
    kind: str
    event: str
    story: str


@dataclass(frozen=True)
class PairScores:
    """Pair counts over every two articles of a set of articles."""

    pairs: int
    true_pairs: int
    tp: int
    fp: int
    fn: int
    false_by_kind: dict = field(default_factory=dict)  # what the wrongly paired articles were
    missed: list = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_json(self) -> dict:
        return {"pairs": self.pairs, "true_pairs": self.true_pairs, "tp": self.tp, "fp": self.fp, "fn": self.fn,
                "precision": round(self.precision, 4), "recall": round(self.recall, 4), "f1": round(self.f1, 4),
                "false_by_kind": self.false_by_kind, "missed": self.missed}


def load_labelled(path: Path = LABELLED) -> list[Labelled]:
    with open(path, encoding="utf-8") as fh:
        return [Labelled(**{k: row[k] for k in Labelled.__dataclass_fields__}) for row in map(json.loads, fh)]


def split_events(rows: list[Labelled], seed: int = SEED) -> tuple[list[Labelled], list[Labelled]]:
    """(fit, test): whole events to one side, so no story has copies on both, stratified by the hardest
    not-a-reprint each event holds (a same-style story, a follow-up, or a rewrite only), so both halves
    hold hard negatives; shuffled within a stratum with `seed`, then dealt alternately."""
    hardest = {}
    for r in rows:
        rank = {"template": 0, "follow_up": 1}.get(r.kind, 2)
        hardest[r.event] = min(rank, hardest.get(r.event, 2))
    rng, fit, turn = random.Random(seed), set(), 0
    for stratum in sorted(set(hardest.values())):
        events = sorted(e for e, rank in hardest.items() if rank == stratum)
        rng.shuffle(events)
        for event in events:
            if turn % 2 == 0:
                fit.add(event)
            turn += 1
    return [r for r in rows if r.event in fit], [r for r in rows if r.event not in fit]


def score(rows: list[Labelled], predicted: dict[str, object]) -> PairScores:
    """Pair precision and recall of a predicted grouping (article id -> group) against the stories."""
    tp = fp = fn = true = 0
    false_by_kind: dict[str, int] = {}
    missed = []
    for a, b in combinations(rows, 2):
        same, paired = a.story == b.story, predicted[a.id] == predicted[b.id]
        true += same
        tp += same and paired
        if paired and not same:
            fp += 1
            kind = "unrelated" if a.event != b.event else "+".join(sorted({a.kind, b.kind} - {"reprint", "original"}))
            false_by_kind[kind] = false_by_kind.get(kind, 0) + 1
        if same and not paired:
            fn += 1
            missed.append([a.id, b.id])
    return PairScores(len(rows) * (len(rows) - 1) // 2, true, tp, fp, fn, false_by_kind, missed)


def edges(rows: list[Labelled], hasher: MinHasher) -> PairScores:
    """Pair scores of the direct test alone (no grouping): how often two copies match each other."""
    signatures = {r.id: hasher.signature(r.text) for r in rows}
    tp = fp = fn = true = 0
    for a, b in combinations(rows, 2):
        same = a.story == b.story
        hit = bool(hasher.duplicates(signatures[a.id], signatures[b.id][None, :])[0])
        true += same
        tp += same and hit
        fp += hit and not same
        fn += same and not hit
    return PairScores(len(rows) * (len(rows) - 1) // 2, true, tp, fp, fn)


def fit_threshold(rows: list[Labelled], settings: StorySettings) -> tuple[float, list[float]]:
    """The threshold whose stories score the best pair F1 on `rows` (the middle of the best range),
    and that range."""
    signatures = {r.id: MinHasher(settings).signature(r.text) for r in rows}
    f1 = {}
    for t in THRESHOLDS:
        groups = MinHasher(replace(settings, threshold=t)).components(signatures)
        f1[t] = score(rows, {aid: n for n, ids in enumerate(groups) for aid in ids}).f1
    best = [t for t in THRESHOLDS if f1[t] == max(f1.values())]
    return best[len(best) // 2], [best[0], best[-1]]


def through_store(rows: list[Labelled], settings: StorySettings, seed: int = SEED) -> dict[str, int]:
    """Story ids as ingest assigns them: the articles written with Store.write one batch of 8 at a
    time, in a shuffled (seeded) order, into a fresh SQLite file."""
    order = list(rows)
    random.Random(seed).shuffle(order)
    empty = np.zeros((0, 1), dtype=np.float32)
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "meta.sqlite", settings)
        for i in range(0, len(order), 8):
            store.write([PreparedArticle(Article(id=r.id, text=r.text, title=r.title, date=r.date, source=r.source),
                                         [], [], empty, [], [], empty, []) for r in order[i: i + 8]], [])
        ids = store.story_ids(r.id for r in rows)
        store.close()
    return ids


def evaluate(seed: int = SEED, settings: StorySettings = StorySettings(), path: Path = LABELLED) -> dict:
    rows = load_labelled(path)
    fit, test = split_events(rows, seed)
    fitted, best_range = fit_threshold(fit, settings)
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    return {
        "set": {"path": str(path.relative_to(path.parents[3])) if len(path.parents) > 3 else str(path),
                "articles": len(rows), "events": len({r.event for r in rows}), "kinds": kinds},
        "split": {"seed": seed, "fit_events": sorted({r.event for r in fit}), "test_events": sorted({r.event for r in test})},
        "fit": {"threshold": fitted, "best_f1_range": best_range},
        "settings": settings.to_json(),
        "test": score(test, through_store(test, settings, seed)).to_json(),
        "test_direct_pairs": edges(test, MinHasher(settings)).to_json(),
        "fit_in_sample": score(fit, through_store(fit, settings, seed)).to_json(),
    }


def spread(splits: int = 5, permutations: int = 20, settings: StorySettings = StorySettings()) -> dict:
    """How much the test figures depend on the luck of the draw: the whole protocol (split, fit,
    score) repeated over split seeds x permutation seeds."""
    rows = load_labelled()
    runs = []
    for split_seed in range(splits):
        fit, test = split_events(rows, split_seed)
        for seed in range(permutations):
            drawn = replace(settings, seed=seed)
            threshold, _ = fit_threshold(fit, drawn)
            result = score(test, through_store(test, replace(drawn, threshold=threshold), seed))
            runs.append((threshold, result.precision, result.recall))
    thresholds, precision, recall = (np.array(x) for x in zip(*runs))
    return {"runs": len(runs), "split_seeds": splits, "permutation_seeds": permutations,
            "threshold": {"min": float(thresholds.min()), "median": float(np.median(thresholds)), "max": float(thresholds.max())},
            "precision": {"min": round(float(precision.min()), 4), "median": round(float(np.median(precision)), 4)},
            "recall": {"min": round(float(recall.min()), 4), "median": round(float(np.median(recall)), 4)},
            "share_both_at_least_0.95": round(float(np.mean((precision >= 0.95) & (recall >= 0.95))), 4)}


def story_step(articles: list[Article], work: Path, repeats: int = 5) -> dict:
    """The story step alone: the same articles written (no chunks) with stories on and off, median
    of `repeats`; the difference is what placing them costs per article."""
    import shutil
    import time

    empty = np.zeros((0, 1), dtype=np.float32)
    seconds: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(repeats):
        for variant in ("on", "off"):
            folder = work / f"step-{variant}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            store = Store(folder / "meta.sqlite")
            if variant == "off":
                store.turn_off_stories()
            started = time.perf_counter()
            for i in range(0, len(articles), 64):
                store.write([PreparedArticle(a, [], [], empty, [], [], empty, []) for a in articles[i: i + 64]], [])
            seconds[variant].append(time.perf_counter() - started)
            store.close()
            shutil.rmtree(folder, ignore_errors=True)
    on, off = (float(np.median(seconds[v])) for v in ("on", "off"))
    return {"ms_per_article_on": round(on * 1e3 / len(articles), 3), "ms_per_article_off": round(off * 1e3 / len(articles), 3),
            "story_ms_per_article": round((on - off) * 1e3 / len(articles), 3)}


def bench_ingest(work: Path, rounds: int = 3) -> dict:
    """Ingest throughput with stories on and off: the labelled set plus the sample corpus (news with
    reprints) into fresh indexes, the two variants alternated (on, off, off, on, ...) `rounds` times
    each, medians kept, the load average read before and after (a shared machine drifts). Wall time
    and this process's CPU time are both kept: other jobs on the machine disturb the second less."""
    import os
    import shutil
    import time

    from rag.archive import Archive
    from rag.articles import iter_sources, make_article, sample_corpus_path

    articles = [make_article({"id": r.id, "title": r.title, "date": r.date, "source": r.source, "text": r.text},
                             r.id, "labelled") for r in load_labelled()]
    articles += [a for a in iter_sources([str(sample_corpus_path())]) if isinstance(a, Article)]
    warm = Archive.open("bench-stories-warm", work, create=True)  # first-use costs (models, date parser) paid here
    warm.ingest(articles[:3])
    shutil.rmtree(work / "bench-stories-warm", ignore_errors=True)
    load_before = os.getloadavg()
    seconds: dict[str, list[float]] = {"on": [], "off": []}
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    for turn in range(2 * rounds):
        variant = ("on", "off", "off", "on")[turn % 4]
        shutil.rmtree(work / f"bench-stories-{variant}", ignore_errors=True)
        archive = Archive.open(f"bench-stories-{variant}", work, create=True)
        if variant == "off":
            archive.store.turn_off_stories()
        archive.embedder.encode(["warm up the model before any clock starts"])
        started, cpu_started = time.perf_counter(), time.process_time()
        archive.ingest(articles)
        seconds[variant].append(time.perf_counter() - started)
        cpu[variant].append(time.process_time() - cpu_started)
        shutil.rmtree(work / f"bench-stories-{variant}", ignore_errors=True)
    on, off = (float(np.median(seconds[v])) for v in ("on", "off"))
    cpu_on, cpu_off = (float(np.median(cpu[v])) for v in ("on", "off"))
    return {"articles": len(articles), "rounds": rounds, "story_step": story_step(articles, work),
            "cpu_seconds": {k: [round(x, 2) for x in v] for k, v in cpu.items()},
            "cpu_throughput_ratio_on_over_off": round(cpu_off / cpu_on, 4), "seconds": {k: [round(x, 2) for x in v] for k, v in seconds.items()},
            "articles_per_s": {"stories_on": round(len(articles) / on, 2), "stories_off": round(len(articles) / off, 2)},
            "throughput_ratio_on_over_off": round(off / on, 4), "cores": os.cpu_count(),
            "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]}}


def markdown(report: dict) -> str:
    t, d = report["test"], report["test_direct_pairs"]
    return "\n".join([
        f"Labelled set: {report['set']['articles']} articles, {report['set']['events']} events {report['set']['kinds']}; "
        f"split seed {report['split']['seed']}.",
        f"Threshold fitted on the fit half: {report['fit']['threshold']} (best F1 over "
        f"{report['fit']['best_f1_range'][0]}-{report['fit']['best_f1_range'][1]}); shipped: {report['settings']['threshold']}.",
        "",
        "| test half | pairs | true pairs | precision | recall | false pairs by kind |",
        "|---|---|---|---|---|---|",
        f"| stories (shipped path) | {t['pairs']} | {t['true_pairs']} | {t['precision']:.3f} | {t['recall']:.3f} | {t['false_by_kind'] or '-'} |",
        f"| direct test alone | {d['pairs']} | {d['true_pairs']} | {d['precision']:.3f} | {d['recall']:.3f} | - |",
    ] + ([] if "spread" not in report else [
        "",
        f"Spread over {report['spread']['runs']} repeats of the protocol ({report['spread']['split_seeds']} split seeds x "
        f"{report['spread']['permutation_seeds']} permutation seeds): fitted threshold {report['spread']['threshold']}, "
        f"test precision min {report['spread']['precision']['min']} / median {report['spread']['precision']['median']}, "
        f"recall min {report['spread']['recall']['min']} / median {report['spread']['recall']['median']}; both >= 0.95 in "
        f"{report['spread']['share_both_at_least_0.95']:.0%} of runs.",
    ]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.stories", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, help="write report.json and report.md here")
    parser.add_argument("--spread", action="store_true",
                        help="also repeat the protocol over 5 split seeds x 20 permutation seeds (minutes)")
    args = parser.parse_args(argv)
    report = evaluate(args.seed)
    if args.spread:
        report["spread"] = spread()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(report, indent=2))
        (args.out / "report.md").write_text(markdown(report) + "\n")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
