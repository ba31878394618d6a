"""Answer study: fit and measure answer-sentence selection, answer spans and abstention on SQuAD.

Steps (each caches its output under .cache/answers/, so later steps rerun in seconds):
  build     ingest SQuAD v1.1 and v2.0 dev into .cache/answers/<name> with the current pipeline
  retrieve  run `Archive.search` (default mode, k=5) for every question; keep passages and query vectors
  span      fit the span ranker on the gold sentences of the tune split (retrieval plays no part)
  table     every sentence of the top 5 passages of every studied question, with its features (the
            runtime's own `sentence_choices`), its best span, and what each would score
  fit       fit the sentence ranker and the abstention model from the tables; write rag/models/answer_model.json
  report    measure on the test split (ablations, oracle, tense rule, abstention curve): eval/answer_study.json
  speed     the parser's ingest cost beside the embedder's, on 300 paragraphs

Splits: SQuAD v1.1 `tune`/`test` as eval.datasets.squad_split (articles halved by sorted title). For
SQuAD 2.0 the abstention model is fitted on questions whose title is in v1.1's tune half and
reported on those whose title is in v1.1's test half, so no reported question's article was seen
when fitting any model.

    .venv/bin/python -m eval.answer_study build retrieve span table fit report
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.datasets import Dataset, Question, load_squad, sample_questions, squad_split
from eval.metrics import exact_match, f1, sentence_hit
from rag import answering
from rag.answering import (SCALED, AnswerModel, Passage, abstain_features, passage_evidence, past_only,
                           sentence_choices)
from rag.archive import Archive
from rag.entities import Candidate
from rag.question_types import classify
from rag.spans import LinearModel, QuestionView, candidate_features, with_dates
from rag.store import SentenceRow
from rag.terms import TermWeights, words

CACHE = Path(".cache/answers")
SETS = {"squad-v1.1": "../shared/eval/squad-v1.1-dev", "squad-v2.0": "../shared/eval/squad-v2.0-dev"}
K = 5
TOP_PASSAGES = (1, 2, 3, 4, 5)
FIT_SAMPLE = 2500  # SQuAD 2.0 questions the abstention model is fitted on (of ~6,000 in the tune titles)
L2 = 1.0  # ridge penalty of the listwise sentence ranker (summed loss over ~5,000 tune questions)
# Signals of sentence selection, in groups whose worth is measured by leaving each out.
GROUPS = {
    "cosine (stored sentence vectors)": ("cos", "cos_mm"),
    "idf overlap": ("idf", "idf_mm"),
    "passage rank and score gap": ("rr", "pgap"),
    "neighbours' overlap": ("prev_idf", "next_idf"),
    "title overlap": ("title_idf",),
    "position in passage": ("first", "pos"),
    "length and novel words": ("log_len", "novel"),
    "type fit (a fitting entity)": ("fit|",),
    "best span's score": ("span", "span_mm", "no_span"),
}
OLD_FEATURES = ("cos", "cos_mm", "idf", "idf_mm", "prev_idf", "rr", "span", "span_mm", "no_span")
ABSTAIN_TARGET = "answerable"  # see fit_abstain
# The shipped abstention threshold answers this share of SQuAD 2.0's answerable fit-half questions: a
# news reader mostly asks what the archive holds, so abstaining as often as SQuAD 2.0's 50% prior of
# adversarial unanswerables rewards is the wrong operating point (the best-accuracy one is reported too).
ANSWER_RECALL = 0.9
ABSTAIN_FEATURES = ("sentence", "cos", "idf", "span", "margin", "title_idf", "missing_idf",
                    "missing_max_share", "missing_any")


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# --- data ---------------------------------------------------------------------------------------
def dataset(name: str) -> Dataset:
    return load_squad(SETS[name])


def open_index(name: str) -> Archive:
    return Archive.open(name, CACHE)


def build(name: str) -> None:
    """Ingest every paragraph of the set as an article (the corpus is never sampled)."""
    ds = dataset(name)
    archive = Archive.open(name, CACHE, create=True)
    report = archive.ingest(iter(ds.articles))
    log(name, json.dumps(report.to_json()))
    (CACHE / f"{name}-build.json").write_text(json.dumps(report.to_json()))


def study_questions(name: str, ds: Dataset) -> list[Question]:
    """The questions a set is studied with: all of v1.1; for v2.0 every question of v1.1's test titles
    (reported) and a seeded sample of FIT_SAMPLE of the others (the abstention model's fit)."""
    if name != "squad-v2.0":
        return ds.questions
    fit_q, report_q = v2_halves(ds)
    keep = {q.id for q in sample_questions(fit_q, FIT_SAMPLE, seed=0)} | {q.id for q in report_q}
    return [q for q in ds.questions if q.id in keep]


def v2_halves(ds: Dataset) -> tuple[list[Question], list[Question]]:
    """SQuAD 2.0 questions split by SQuAD v1.1's tune titles (fit) and test titles (report)."""
    titles = sorted({a.title for a in dataset("squad-v1.1").articles})
    tune = set(titles[: len(titles) // 2])
    return [q for q in ds.questions if q.extra["title"] in tune], [q for q in ds.questions if q.extra["title"] not in tune]


def retrieve(name: str) -> None:
    """Passages and query vector of each studied question, through the product's own search."""
    ds, archive = dataset(name), open_index(name)
    questions = study_questions(name, ds)
    rows, vectors = [], []
    started = time.perf_counter()
    for i, q in enumerate(questions):
        passages, _, _, vector = archive.search(q.question, K)
        rows.append([[p.article.id, p.start, p.end, p.score, p.citation] for p in passages])
        vectors.append(vector)
        if i % 1000 == 0:
            log(name, i, f"{time.perf_counter() - started:.0f}s")
    (CACHE / f"{name}-retrieval.json").write_text(json.dumps({q.id: r for q, r in zip(questions, rows)}))
    np.save(CACHE / f"{name}-queries.npy", np.vstack(vectors).astype(np.float32))


class Corpus:
    """One study set in memory: articles, stored sentences, term weights and cached retrieval."""

    def __init__(self, name: str):
        self.ds = dataset(name)
        archive = open_index(name)
        self.articles = {a.id: archive.store.get_article(a.id) for a in self.ds.articles}
        self.sentences: dict[str, list[SentenceRow]] = {
            aid: archive.store.sentences_in(aid, 0, len(a.text)) for aid, a in self.articles.items()}
        self.weights = TermWeights.from_bm25(archive.derived().lexical.retriever)
        self.retrieval = json.loads((CACHE / f"{name}-retrieval.json").read_text())
        vectors = np.load(CACHE / f"{name}-queries.npy")
        self.questions = study_questions(name, self.ds)
        self.query = {q.id: vectors[i] for i, q in enumerate(self.questions)}

    def sentences_for(self, passage: Passage) -> list[SentenceRow]:
        return [r for r in self.sentences[passage.article.id] if r.start >= passage.start and r.end <= passage.end]

    def passages(self, q: Question, oracle: bool) -> list[Passage]:
        if oracle:
            aid = next(iter(q.relevant))
            return [Passage(1, self.articles[aid], 0, len(self.articles[aid].text), 1.0, ())]
        return [Passage(c, self.articles[a], s, e, sc, ()) for a, s, e, sc, c in self.retrieval[q.id]]

    def choices(self, q: Question, model: AnswerModel, oracle: bool = False, future_rule: bool = True):
        return sentence_choices(q.question, self.query[q.id], self.passages(q, oracle), self.sentences_for,
                                self.weights, model, future_rule)


# --- the span ranker (gold sentences) -----------------------------------------------------------
def fit_linear(feature_dicts: list[dict], labels: list[int], c: float = 1.0) -> LinearModel:
    """Logistic regression over named sparse features, exported as a LinearModel."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = DictVectorizer()
    x = vec.fit_transform(feature_dicts)
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit(x, labels)
    weights = {name: round(float(w), 5) for name, w in zip(vec.get_feature_names_out(), clf.coef_[0]) if abs(w) > 1e-6}
    return LinearModel(weights, round(float(clf.intercept_[0]), 5))


def gold_sentence(corpus: Corpus, q: Question) -> SentenceRow | None:
    """The stored sentence holding the first gold answer's start offset."""
    aid = next(iter(q.relevant))
    starts = q.extra.get("answer_start") or []
    if not starts:
        return None
    return next((r for r in corpus.sentences[aid] if r.start <= starts[0] < r.end), None)


def span_examples(corpus: Corpus, questions: list[Question]):
    """(features, label, question index, span text) for every candidate of each gold sentence."""
    out = []
    for qi, q in enumerate(questions):
        row = gold_sentence(corpus, q)
        if row is None:
            continue
        text = corpus.articles[row.article_id].text
        view = QuestionView.of(q.question, classify(q.question))
        sw = words(text[row.start:row.end])
        for c in with_dates([Candidate.from_row(r, row.start) for r in row.candidates], row.dates):
            span = text[c.start:c.end]
            feats = candidate_features(view, text, (row.start, row.end), sw, c, row.dates)
            out.append((feats, int(exact_match(span, q.answers) > 0), qi, span))
    return out


def span_scores(model: LinearModel, examples, questions: list[Question]) -> dict[str, float]:
    """EM/F1 of the top-scored candidate of the gold sentence (questions without candidates score 0)."""
    best: dict[int, tuple[float, str]] = {}
    for feats, _, qi, span in examples:
        s = model.score(feats)
        if qi not in best or s > best[qi][0]:
            best[qi] = (s, span)
    em = [exact_match(best[i][1], q.answers) if i in best else 0.0 for i, q in enumerate(questions)]
    f = [f1(best[i][1], q.answers) if i in best else 0.0 for i, q in enumerate(questions)]
    return {"exact_match": float(np.mean(em)), "f1": float(np.mean(f)), "n": len(questions)}


def fit_span() -> None:
    """The span ranker, fitted on every candidate of the tune questions' gold sentences."""
    v1 = Corpus("squad-v1.1")
    tune = squad_split(v1.ds, "tune").questions
    examples = span_examples(v1, tune)
    span = fit_linear([e[0] for e in examples], [e[1] for e in examples], c=0.5)
    log("span on tune (gold sentence)", span_scores(span, examples, tune))
    doc = model_doc()
    doc["span"] = _json(span)
    write_model(doc)


# --- tables: every candidate sentence with its features and outcomes ----------------------------
@dataclass
class Table:
    """One question's candidate sentences (top passages, or the gold paragraph) and their outcomes."""

    qid: str
    impossible: bool
    future_date: bool  # a "when ... will / expected" question: the tense rule applies
    features: list[dict]  # raw features, as `sentence_choices` computes them (before scaling)
    rank: np.ndarray  # passage rank of each sentence (1-based)
    hit: np.ndarray  # the sentence holds a gold answer
    span_score: np.ndarray  # logit of its best span (-inf: none)
    span_em: np.ndarray
    span_f1: np.ndarray
    sentence_em: np.ndarray
    sentence_f1: np.ndarray
    past_only: np.ndarray  # all its dates precede its article's publication
    evidence: dict[int, dict]  # passage rank -> passage_evidence


def tabulate(corpus: Corpus, q: Question, span_model: LinearModel, oracle: bool) -> Table:
    model = AnswerModel(span_model, LinearModel({}), LinearModel({}), max(TOP_PASSAGES), 0.0, 0.0)
    passages = corpus.passages(q, oracle)
    choices = corpus.choices(q, model, oracle, future_rule=False)
    cols: dict[str, list] = {k: [] for k in ("rank", "hit", "span_score", "span_em", "span_f1", "sentence_em",
                                             "sentence_f1", "past_only")}
    for c in choices:
        text = c.passage.article.text
        sentence = text[c.row.start:c.row.end]
        span = text[c.span.start:c.span.end] if c.span else sentence
        for key, value in (("rank", round(1.0 / c.features["rr"])), ("hit", sentence_hit(sentence, q.answers)),
                           ("span_score", c.span.score if c.span else -np.inf),
                           ("span_em", exact_match(span, q.answers)), ("span_f1", f1(span, q.answers)),
                           ("sentence_em", exact_match(sentence, q.answers)),
                           ("sentence_f1", f1(sentence, q.answers)), ("past_only", past_only(c))):
            cols[key].append(value)
    return Table(q.id, q.impossible, answering.asks_future_date(q.question),
                 [c.features for c in choices], **{k: np.array(v, dtype=float) for k, v in cols.items()},
                 evidence={i: passage_evidence(q.question, p, corpus.weights)
                           for i, p in enumerate(passages[: model.top_passages], 1)})


def table() -> None:
    """Tables for v1.1 (all questions over the corpus, test questions with the gold paragraph) and v2.0."""
    span_model = load_span()
    v1 = Corpus("squad-v1.1")
    test_ids = {q.id for q in squad_split(v1.ds, "test").questions}
    started = time.perf_counter()
    out = {"corpus": [], "oracle": []}
    for i, q in enumerate(v1.questions):
        out["corpus"].append(tabulate(v1, q, span_model, False))
        if q.id in test_ids:
            out["oracle"].append(tabulate(v1, q, span_model, True))
        if i % 1000 == 0:
            log("v1.1 table", i, f"{time.perf_counter() - started:.0f}s")
    _save("squad-v1.1", out)
    v2 = Corpus("squad-v2.0")
    _save("squad-v2.0", {"corpus": [tabulate(v2, q, span_model, False) for q in v2.questions]})
    log("tables written", f"{time.perf_counter() - started:.0f}s")


def _save(name: str, tables: dict[str, list[Table]]) -> None:
    """Pickled as plain dicts, so any module (not only this one run as a script) can read them."""
    with open(CACHE / f"{name}-tables.pkl", "wb") as fh:
        pickle.dump({k: [vars(t) for t in v] for k, v in tables.items()}, fh)


def load_tables(name: str) -> dict[str, list[Table]]:
    with open(CACHE / f"{name}-tables.pkl", "rb") as fh:
        return {k: [Table(**t) for t in v] for k, v in pickle.load(fh).items()}


# --- sentence ranking on tables -----------------------------------------------------------------
class Design:
    """The kept sentences (top n passages) of a list of tables as one matrix, with scaled signals."""

    def __init__(self, tables: list[Table], n: int, names: list[str] | None = None):
        from sklearn.feature_extraction import DictVectorizer

        self.tables, self.n = tables, n
        self.keep = [t.rank <= n for t in tables]
        dicts, sizes = [], []
        for t, keep in zip(tables, self.keep):
            kept = [dict(f) for f, k in zip(t.features, keep) if k]
            for name in SCALED:
                values = np.array([f[name] for f in kept])
                if len(values):
                    scaled = answering.minmax(values)
                    for f, v in zip(kept, scaled):
                        f[name + "_mm"] = float(v)
            dicts.extend(kept)
            sizes.append(len(kept))
        vec = DictVectorizer(sparse=False)
        if names is None:
            self.x = vec.fit_transform(dicts)
            self.names = list(vec.get_feature_names_out())
        else:
            vec.fit([{n_: 1.0 for n_ in names}])
            self.x = vec.transform(dicts)
            self.names = list(vec.get_feature_names_out())
        self.sizes = np.array(sizes)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(int)
        self.y = np.concatenate([t.hit[k] for t, k in zip(tables, self.keep)]) if dicts else np.zeros(0)

    def columns(self, keep: tuple[str, ...]) -> np.ndarray:
        """Indices of the features whose names start with any of `keep`'s entries ('fit|' a prefix)."""
        return np.array([i for i, n in enumerate(self.names)
                         if n in keep or any(k.endswith("|") and n.startswith(k) for k in keep)], dtype=int)

    def choose(self, model: LinearModel, future_rule: bool = True) -> list[int | None]:
        """Per table, the index (into the table's rows) of the sentence the model ranks first."""
        w = np.array([model.weights.get(n, 0.0) for n in self.names])
        scores = self.x @ w + model.bias
        out: list[int | None] = []
        for t, keep, start, size in zip(self.tables, self.keep, self.starts, self.sizes):
            if size == 0:
                out.append(None)
                continue
            rows = np.flatnonzero(keep)
            s = scores[start:start + size]
            order = np.argsort(-s, kind="stable")
            if future_rule and t.future_date:
                order = sorted(order, key=lambda i: t.past_only[rows[i]])
            out.append(int(rows[order[0]]))
        return out


def conditional_logit(x: np.ndarray, y: np.ndarray, sizes: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """Weights (and the bias that undoes standardising) of a per-group softmax that maximises the
    probability of each group's positive rows; groups with no positive, or one row, teach nothing."""
    from scipy.optimize import minimize

    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    pos = np.add.reduceat(y, starts)
    useful = (pos > 0) & (sizes > 1)
    rows = np.concatenate([np.arange(s, s + n) for s, n, u in zip(starts, sizes, useful) if u])
    x, y, sizes = x[rows], y[rows], sizes[useful]
    mean, scale = x.mean(0), x.std(0) + 1e-9
    x = (x - mean) / scale
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    group = np.repeat(np.arange(len(sizes)), sizes)

    def loss(w):
        s = x @ w
        m = np.maximum.reduceat(s, starts)
        e = np.exp(s - m[group])
        total, good = np.add.reduceat(e, starts), np.add.reduceat(e * y, starts)
        value = -np.sum(np.log(good) - np.log(total)) + 0.5 * l2 * w @ w
        grad = x.T @ (e / total[group] - e * y / good[group]) + l2 * w
        return value, grad

    w = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x / scale
    return w, float(-(w @ mean))


def fit_listwise(design: Design, cols: np.ndarray, l2: float = L2) -> LinearModel:
    """The sentence ranker over the chosen columns: a conditional logit per question."""
    w, bias = conditional_logit(design.x[:, cols], design.y, design.sizes, l2)
    names = [design.names[i] for i in cols]
    return LinearModel({n: round(float(v), 5) for n, v in zip(names, w) if abs(v) > 1e-7}, round(bias, 5))


def hit_at_1(design: Design, model: LinearModel, future_rule: bool = True) -> float:
    chosen = design.choose(model, future_rule)
    return float(np.mean([t.hit[i] if i is not None else 0.0 for t, i in zip(design.tables, chosen)]))


def answer_scores(design: Design, model: LinearModel, span_threshold: float, future_rule: bool = True) -> dict:
    """End to end over the tables, never abstaining: sentence hit@1, span EM/F1, whole-sentence F1."""
    out = {"sentence_hit@1": [], "exact_match": [], "f1": [], "f1_whole_sentence": []}
    for t, i in zip(design.tables, design.choose(model, future_rule)):
        if i is None:
            for v in out.values():
                v.append(0.0)
            continue
        use_span = t.span_score[i] >= span_threshold
        out["sentence_hit@1"].append(t.hit[i])
        out["exact_match"].append(t.span_em[i] if use_span else t.sentence_em[i])
        out["f1"].append(t.span_f1[i] if use_span else t.sentence_f1[i])
        out["f1_whole_sentence"].append(t.sentence_f1[i])
    return {k: round(float(np.mean(v)), 4) for k, v in out.items()} | {"n": len(design.tables)}


def fit_span_threshold(design: Design, model: LinearModel) -> float:
    """The span logit under which the whole sentence scores a better F1 than the span, on tune."""
    pairs = sorted((t.span_score[i], t.span_f1[i], t.sentence_f1[i])
                   for t, i in zip(design.tables, design.choose(model)) if i is not None and np.isfinite(t.span_score[i]))
    best_total, threshold = sum(p[1] for p in pairs), -1e9
    total = best_total
    for score, span_f1, sentence_f1 in pairs:  # from this score on: span; below: sentence
        if total > best_total:
            best_total, threshold = total, score
        total += sentence_f1 - span_f1
    log("span threshold", threshold, "tune F1", best_total / max(1, len(pairs)))
    return float(threshold)


# --- abstention on tables -----------------------------------------------------------------------
def abstain_rows(design: Design, model: LinearModel, span_threshold: float):
    """Per table: abstention features of the chosen answer (None when no sentence), impossible flag,
    and the F1 / EM / sentence hit of the answer it would give."""
    w = np.array([model.weights.get(n, 0.0) for n in design.names])
    scores = design.x @ w + model.bias
    out = []
    for t, i, start, size in zip(design.tables, design.choose(model), design.starts, design.sizes):
        if i is None:
            out.append((None, t.impossible, 0.0, 0.0, 0.0))
            continue
        s = np.sort(scores[start:start + size])[::-1]
        best = t.features[i]
        margin = float(s[0] - s[1]) if len(s) > 1 else 5.0
        feats = abstain_features([_Choice(float(s[0]), best), _Choice(float(s[0]) - margin, best)],
                                 t.evidence[int(t.rank[i])])
        use_span = t.span_score[i] >= span_threshold
        out.append((feats, t.impossible, t.span_f1[i] if use_span else t.sentence_f1[i],
                    t.span_em[i] if use_span else t.sentence_em[i], t.hit[i]))
    return out


@dataclass
class _Choice:
    """The part of a SentenceChoice that `abstain_features` reads."""

    score: float
    features: dict


def decide(rows, model: LinearModel, threshold: float) -> dict[str, float]:
    """Accuracy of answer/abstain decisions and SQuAD 2.0 EM/F1 at one threshold."""
    correct, em, fs, abstained, has, no = [], [], [], [], [], []
    for feats, impossible, f, e, _ in rows:
        abstain = feats is None or model.score(feats) < threshold
        abstained.append(abstain)
        correct.append(abstain == impossible)
        fs.append(1.0 if abstain and impossible else 0.0 if abstain or impossible else f)
        em.append(1.0 if abstain and impossible else 0.0 if abstain or impossible else e)
        (no if impossible else has).append(fs[-1])
    return {"accuracy": float(np.mean(correct)), "answer_or_abstain_f1": float(np.mean(fs)),
            "exact_match": float(np.mean(em)), "abstain_rate": float(np.mean(abstained)),
            "has_ans_f1": float(np.mean(has)), "no_ans_accuracy": float(np.mean(no))}


def threshold_curve(rows, model: LinearModel) -> list[dict]:
    """Decision quality at thresholds spread over the scores' quantiles."""
    scores = np.array([model.score(r[0]) for r in rows if r[0] is not None])
    out = []
    for q in np.linspace(0.0, 1.0, 21):
        t = float(np.quantile(scores, q)) if q < 1 else float(scores.max() + 1e-6)
        out.append({"threshold": round(t, 4), **{k: round(v, 4) for k, v in decide(rows, model, t).items()}})
    return out


def fit_abstain(rows, target: str) -> LinearModel:
    """Logistic model of P(answer) over ABSTAIN_FEATURES. target 'answerable': the question has an
    answer; 'correct': it has one and the answer given holds it (so retrieval misses count too)."""
    usable = [r for r in rows if r[0] is not None]
    labels = [int(not r[1] and (target == "answerable" or r[4] > 0)) for r in usable]
    return fit_linear([{k: r[0][k] for k in ABSTAIN_FEATURES} for r in usable], labels)


# --- steps --------------------------------------------------------------------------------------
def splits() -> tuple[list[Table], list[Table], list[Table]]:
    """v1.1 tune tables, test tables (corpus), test tables (gold paragraph)."""
    v1 = dataset("squad-v1.1")
    tune_ids = {q.id for q in squad_split(v1, "tune").questions}
    tables = load_tables("squad-v1.1")
    return ([t for t in tables["corpus"] if t.qid in tune_ids], [t for t in tables["corpus"] if t.qid not in tune_ids],
            tables["oracle"])


def v2_tables() -> tuple[list[Table], list[Table]]:
    ds = dataset("squad-v2.0")
    fit_q, _ = v2_halves(ds)
    fit_ids = {q.id for q in fit_q}
    tables = load_tables("squad-v2.0")["corpus"]
    return [t for t in tables if t.qid in fit_ids], [t for t in tables if t.qid not in fit_ids]


ALL = tuple(f for group in GROUPS.values() for f in group)


def fit() -> None:
    tune, _, _ = splits()
    best = None
    for n in TOP_PASSAGES:
        design = Design(tune, n)
        model = fit_listwise(design, design.columns(ALL))
        hit = hit_at_1(design, model)
        log("top passages", n, "tune hit@1", round(hit, 4))
        if best is None or hit > best[0]:
            best = (hit, n, model, design)
    _, n, sentence, design = best
    span_threshold = fit_span_threshold(design, sentence)
    fit_v2, _ = v2_tables()
    rows = abstain_rows(Design(fit_v2, n, design.names), sentence, span_threshold)
    abstain = fit_abstain(rows, ABSTAIN_TARGET)
    curve = threshold_curve(rows, abstain)
    best_accuracy = max(curve, key=lambda c: (c["accuracy"], c["answer_or_abstain_f1"]))["threshold"]
    answerable = [abstain.score(r[0]) for r in rows if r[0] is not None and not r[1]]
    threshold = round(float(np.quantile(answerable, 1.0 - ANSWER_RECALL)), 4)
    log("abstention on the fit half: shipped", decide(rows, abstain, threshold),
        "best accuracy", decide(rows, abstain, best_accuracy))
    doc = model_doc()
    doc.update({"about": "Fitted by eval/answer_study.py on SQuAD v1.1 dev tune split (span, sentence) and "
                         "SQuAD 2.0 dev questions of v1.1 tune titles (abstention). Scores are logits.",
                "top_passages": n, "answer_threshold": threshold, "max_accuracy_threshold": best_accuracy,
                "answer_recall_on_tune": ANSWER_RECALL, "span_threshold": span_threshold,
                "sentence": _json(sentence), "abstain": _json(abstain), "tune_curve": curve})
    write_model(doc)


def model_doc() -> dict:
    return json.loads(answering.MODEL_PATH.read_text())


def write_model(doc: dict) -> None:
    answering.MODEL_PATH.parent.mkdir(exist_ok=True)
    answering.MODEL_PATH.write_text(json.dumps(doc, indent=1, sort_keys=True))
    log("wrote", answering.MODEL_PATH)


def load_span() -> LinearModel:
    return LinearModel.from_json(model_doc()["span"])


def _json(model: LinearModel) -> dict:
    return {"bias": model.bias, "weights": dict(sorted(model.weights.items()))}


def report() -> None:
    model = answering.load_model()
    tune, test, oracle = splits()
    n = model.top_passages
    out: dict = {"model": str(answering.MODEL_PATH), "n_test": len(test), "top_passages": n}
    # sentence selection: each feature set fitted on tune, measured on test
    d_tune = Design(tune, n)
    d_test, d_oracle_test = Design(test, n, d_tune.names), Design(oracle, 1, d_tune.names)
    ablation: dict = {}

    def measure(label: str, keep: tuple[str, ...]) -> None:
        fitted = fit_listwise(d_tune, d_tune.columns(keep))
        ablation[label] = {"corpus": round(hit_at_1(d_test, fitted), 4),
                           "gold paragraph": round(hit_at_1(d_oracle_test, fitted), 4)}
        log(label, ablation[label])

    measure("cosine alone", GROUPS["cosine (stored sentence vectors)"])
    measure("cosine + idf overlap", GROUPS["cosine (stored sentence vectors)"] + GROUPS["idf overlap"])
    measure("previous model's features", OLD_FEATURES)
    measure("all", ALL)
    for group, feats in GROUPS.items():
        measure(f"all but {group}", tuple(f for f in ALL if f not in feats))
    out["sentence_hit@1"] = ablation
    out["hit@1_by_top_passages"] = {
        m: round(hit_at_1(Design(test, m, d_tune.names), fit_listwise(d := Design(tune, m, d_tune.names), d.columns(ALL))), 4)
        for m in TOP_PASSAGES}
    out["pointwise_logistic_all"] = round(hit_at_1(d_test, _pointwise(d_tune, ALL)), 4)
    # end to end, never abstaining; the tense rule on and off
    out["corpus"] = answer_scores(d_test, model.sentence, model.span_threshold)
    out["corpus_without_tense_rule"] = answer_scores(d_test, model.sentence, model.span_threshold, future_rule=False)
    out["tense_rule_questions"] = sum(t.future_date for t in test)
    out["oracle"] = answer_scores(d_oracle_test, model.sentence, model.span_threshold)
    v1 = Corpus("squad-v1.1")
    test_q = squad_split(v1.ds, "test").questions
    out["span_gold_sentence"] = span_scores(model.span, span_examples(v1, test_q), test_q)
    out["consistency"] = consistency(v1, test_q, model, d_test)
    # abstention on SQuAD 2.0, questions of v1.1's test titles
    fit_v2, report_v2 = v2_tables()
    rows = abstain_rows(Design(report_v2, n, d_tune.names), model.sentence, model.span_threshold)
    fit_rows = abstain_rows(Design(fit_v2, n, d_tune.names), model.sentence, model.span_threshold)
    targets = {}
    for target in ("answerable", "correct"):
        m = fit_abstain(fit_rows, target)
        t = max(threshold_curve(fit_rows, m), key=lambda c: (c["accuracy"], c["answer_or_abstain_f1"]))["threshold"]
        targets[target] = {"threshold": t, "report": decide(rows, m, t),
                           "roc_auc_impossible": _auc([m.score(r[0]) if r[0] else -1e9 for r in rows],
                                                      [not r[1] for r in rows])}
    out["squad2_test"] = {"n": len(rows), "impossible": sum(r[1] for r in rows),
                          "shipped": decide(rows, model.abstain, model.answer_threshold),
                          "always_answer": decide(rows, model.abstain, -1e9),
                          "targets": targets, "curve": threshold_curve(rows, model.abstain)}
    v1_rows = abstain_rows(d_test, model.sentence, model.span_threshold)
    out["v1_test_answered"] = round(float(np.mean([r[0] is not None and model.abstain.score(r[0]) >= model.answer_threshold
                                                   for r in v1_rows])), 4)
    Path("eval/answer_study.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


def _pointwise(design: Design, keep: tuple[str, ...]) -> LinearModel:
    """The previous fit: pointwise logistic regression over the kept sentences."""
    from sklearn.linear_model import LogisticRegression

    cols = design.columns(keep)
    clf = LogisticRegression(max_iter=2000).fit(design.x[:, cols], design.y)
    return LinearModel({design.names[i]: float(w) for i, w in zip(cols, clf.coef_[0])}, float(clf.intercept_[0]))


def consistency(corpus: Corpus, questions: list[Question], model: AnswerModel, design: Design, n: int = 500) -> dict:
    """The runtime path (`sentence_choices` with the shipped model) against the tables on a sample:
    the share of questions where both choose the same sentence."""
    picked = {t.qid: (t, i) for t, i in zip(design.tables, design.choose(model.sentence))}
    same = []
    for q in sample_questions(questions, n, seed=1):
        choices = corpus.choices(q, model)
        t, i = picked[q.id]
        if not choices or i is None:
            same.append(not choices and i is None)
            continue
        text = corpus.articles[choices[0].row.article_id].text
        same.append(sentence_hit(text[choices[0].row.start:choices[0].row.end], q.answers) == bool(t.hit[i]))
    return {"n": len(same), "same_hit": float(np.mean(same))}


def _auc(scores: list[float], positive: list[bool]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, scores))


def speed(n: int = 300) -> None:
    """Ingest cost of the parser beside the embedder's, on the first n SQuAD v1.1 paragraphs."""
    from rag.chunking import split_sentences
    from rag.embedding import shared_embedder
    from rag.entities import find_candidates

    texts = [a.text for a in dataset("squad-v1.1").articles[:n]]
    embedder = shared_embedder()
    embedder.encode(texts[:4])
    find_candidates(texts[:4])
    t0 = time.perf_counter()
    find_candidates(texts)
    t1 = time.perf_counter()
    embedder.encode(texts)
    embedder.encode([t[s:e] for t in texts for s, e in split_sentences(t)])
    t2 = time.perf_counter()
    chars = sum(map(len, texts))
    out = {"paragraphs": n, "chars": chars, "parser_seconds": round(t1 - t0, 2),
           "embed_seconds": round(t2 - t1, 2), "parser_chars_per_s": round(chars / (t1 - t0)),
           "embed_chars_per_s": round(chars / (t2 - t1))}
    (CACHE / "speed.json").write_text(json.dumps(out))
    print(json.dumps(out))


STEPS = ("build", "retrieve", "span", "table", "fit", "report", "speed")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("steps", nargs="+", choices=STEPS)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    args = parser.parse_args(argv)
    for step in args.steps:
        if step in ("build", "retrieve"):
            for name in args.sets:
                (build if step == "build" else retrieve)(name)
        else:
            {"span": fit_span, "table": table, "fit": fit, "report": report, "speed": speed}[step]()


if __name__ == "__main__":
    main()
