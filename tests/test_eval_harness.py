"""`newsrag eval` end to end: real indexes, the real model, in-process and against a real server."""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from pathlib import Path

import pytest

from eval.datasets import Question, load_qa
from eval.load import served
from eval.run import Asked, answer_metrics, index_name
from newsrag import cli as newsrag_cli
from rag.articles import sample_corpus_path

DATA = Path(__file__).resolve().parent / "data"
MODES = ["bm25", "dense", "hybrid"]
TOP_KEYS = {"dataset", "format", "split", "n_questions", "default_mode", "modes", "config"}
RANKING = {"ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10", "recall@100", "hit@1", "hit@5", "hit@10"}
ANSWERS = {"exact_match", "f1", "sentence_hit@1"}
ABSTENTION = {"abstain_precision", "abstain_recall", "answer_or_abstain_f1"}


def newsrag(*args: str) -> tuple[int, str, str]:
    """`newsrag ARGS` through the real entry point, in this process (the model loads once)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = newsrag_cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def qa_dir(tmp_path_factory) -> Path:
    """The bundled sample corpus with 28 hand-written questions (4 unanswerable), as a qa folder."""
    folder = tmp_path_factory.mktemp("qa-set")
    shutil.copy(sample_corpus_path() / "articles.jsonl", folder / "articles.jsonl")
    shutil.copy(DATA / "sample_questions.jsonl", folder / "questions.jsonl")
    return folder


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("eval-cache")


@pytest.fixture(scope="module")
def local_run(qa_dir, cache, tmp_path_factory) -> tuple[dict, str, str, Path]:
    """One in-process run over all three modes: (report, stdout, stderr, out folder)."""
    out = tmp_path_factory.mktemp("local") / "run"
    code, stdout, stderr = newsrag("eval", str(qa_dir), "--format", "qa", "--mode", ",".join(MODES),
                                   "--cache-dir", str(cache), "--out", str(out))
    assert code == 0, stderr
    return json.loads((out / "report.json").read_text()), stdout, stderr, out


def test_report_has_the_contract_keys_and_a_row_per_mode(local_run) -> None:
    report, stdout, _, out = local_run
    assert set(report) == TOP_KEYS
    assert report["dataset"].startswith("qa-set")  # the folder's name
    assert (report["format"], report["split"], report["n_questions"]) == ("qa", "all", 28)
    assert report["default_mode"] == "hybrid" and list(report["modes"]) == MODES
    for mode, entry in report["modes"].items():
        assert set(entry["metrics"]) == RANKING | ANSWERS | ABSTENTION | {"answer_or_abstain_em"}, mode
        assert all(0.0 <= v <= 1.0 for v in entry["metrics"].values()), mode
        assert set(entry["latency_ms"]) == {"p50", "p95", "p99"}
        assert entry["latency_ms"]["p50"] <= entry["latency_ms"]["p95"] <= entry["latency_ms"]["p99"]
        assert {"embed", "retrieve", "answer", "total", "wall"} <= set(entry["stage_latency_ms"])
        assert entry["metrics"]["recall@100"] == 1.0  # 16 articles: every relevant one is within 100
    config = report["config"]
    assert config["seed"] == 0 and config["k"] == 100 and config["target"]["via"] == "in-process"
    assert config["command"].startswith("newsrag eval ") and config["n_impossible"] == 4
    table = stdout.strip().splitlines()
    assert table[0].startswith("| mode | ndcg@10 |") and len(table) == 2 + len(MODES)
    assert table[-1].startswith("| hybrid (default) |")
    assert (out / "report.md").read_text().count("| bm25 |") == 1
    for plot in ("recall.png", "latency.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_agree_with_the_per_question_records(local_run) -> None:
    """hit@1, MRR@10, sentence hit and abstention recomputed by hand from questions.jsonl."""
    report, _, _, out = local_run
    records = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    for mode in MODES:
        rows = [r for r in records if r["mode"] == mode]
        assert len(rows) == 28
        judged = [r for r in rows if r["relevant"]]
        ranks = [r["first_relevant_rank"] for r in judged]
        metrics = report["modes"][mode]["metrics"]
        assert metrics["hit@1"] == pytest.approx(sum(r == 1 for r in ranks) / len(judged), abs=1e-6)
        assert metrics["mrr@10"] == pytest.approx(
            sum(1 / r for r in ranks if r and r <= 10) / len(judged), abs=1e-6)
        impossible = [r for r in rows if not r["gold"] and not r["relevant"]]
        assert metrics["abstain_recall"] == pytest.approx(
            sum(r["prediction"] is None for r in impossible) / len(impossible), abs=1e-6)


def test_a_second_run_reuses_the_cached_index(local_run, qa_dir, cache) -> None:
    code, stdout, stderr = newsrag("eval", str(qa_dir), "--format", "qa", "--cache-dir", str(cache), "--build-only")
    assert code == 0 and "(cached)" in stderr
    name = stdout.strip()
    assert name == local_run[0]["config"]["index"] and f"--index {name} --index-dir {cache}" in stderr
    assert [p.name for p in cache.iterdir()] == [name]


def test_the_cache_key_follows_article_content(qa_dir) -> None:
    dataset = load_qa(qa_dir)
    edited = replace(dataset, articles=[replace(dataset.articles[0], text=dataset.articles[0].text + " More.")]
                     + dataset.articles[1:])
    assert index_name(dataset) == index_name(load_qa(qa_dir))
    assert index_name(edited) != index_name(dataset)


@pytest.fixture(scope="module")
def server(local_run, cache, tmp_path_factory):
    """`newsrag serve` on the run's index, in its own process, on a free loopback port."""
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    with served(local_run[0]["config"]["index"], str(cache), env={"NEWSRAG_MAX_K": "100"}, log=log) as running:
        yield running.url


@pytest.fixture(scope="module")
def http_run(server, qa_dir, cache, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("http") / "run"
    code, _, stderr = newsrag("eval", str(qa_dir), "--format", "qa", "--mode", ",".join(MODES), "--url", server,
                              "--cache-dir", str(cache), "--out", str(out))
    assert code == 0, stderr
    assert "warning" not in stderr  # the server holds this data set's index
    return json.loads((out / "report.json").read_text()), out


def test_http_run_gives_the_same_figures_as_in_process(local_run, http_run, server) -> None:
    local, (remote, _) = local_run[0], http_run
    assert remote["config"]["target"] == {"via": "http", "url": server, "index": local["config"]["index"],
                                          "articles": 16}
    for mode in MODES:
        assert remote["modes"][mode]["metrics"] == local["modes"][mode]["metrics"], mode
        assert remote["modes"][mode]["recall_curve"] == local["modes"][mode]["recall_curve"], mode


def test_compare_prints_the_difference_per_metric(local_run, http_run, tmp_path) -> None:
    a = local_run[3] / "report.json"
    code, stdout, _ = newsrag("eval", "compare", str(a), str(http_run[1] / "report.json"))
    assert code == 0
    assert "| hybrid | ndcg@10 |" in stdout and "| bm25 | latency p95 ms |" in stdout
    ndcg = local_run[0]["modes"]["dense"]["metrics"]["ndcg@10"]
    changed = json.loads(a.read_text())
    changed["modes"]["dense"]["metrics"]["ndcg@10"] = ndcg - 0.25
    del changed["modes"]["bm25"]
    b = tmp_path / "b.json"
    b.write_text(json.dumps(changed))
    code, stdout, stderr = newsrag("eval", "compare", str(a), str(b))
    row = next(line for line in stdout.splitlines() if line.startswith("| dense | ndcg@10 |"))
    assert row == f"| dense | ndcg@10 | {ndcg:.3f} | {ndcg - 0.25:.3f} | -0.250 |"
    assert "mode 'bm25' is only in A" in stderr and "| bm25 |" not in stdout


def test_beir_set_reports_ranking_only(tmp_path) -> None:
    root = tmp_path / "beir"
    _write_jsonl(root / "corpus.jsonl", [
        {"_id": "d1", "title": "Aspirin and headaches", "text": "Aspirin relieves tension headaches in adults."},
        {"_id": "d2", "title": "Vitamin C", "text": "Vitamin C does not cure the common cold."},
        {"_id": "d3", "title": "Sleep", "text": "Adults need seven to nine hours of sleep."}])
    _write_jsonl(root / "queries.jsonl", [{"_id": "1", "text": "Does aspirin relieve headaches?"},
                                          {"_id": "2", "text": "Can vitamin C cure a cold?"}])
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\t1\n")
    out = tmp_path / "out"
    code, stdout, stderr = newsrag("eval", str(root), "--format", "beir", "--mode", "bm25", "--k", "10",
                                   "--cache-dir", str(tmp_path / "cache"), "--out", str(out))
    assert code == 0, stderr
    metrics = json.loads((out / "report.json").read_text())["modes"]["bm25"]["metrics"]
    assert set(metrics) == RANKING - {"recall@100"}  # k=10 passages cannot support recall@100
    assert metrics["hit@1"] == 1.0 and metrics["recall@10"] == 1.0  # each query names its document


def test_squad_v2_split_reports_abstention(tmp_path) -> None:
    doc = {"version": "v2.0", "data": [
        {"title": "Apple", "paragraphs": [{"context": "Apples grow on trees in orchards.", "qas": [
            {"id": "a1", "question": "Where do apples grow?", "answers": [{"text": "on trees", "answer_start": 12}],
             "is_impossible": False},
            {"id": "a2", "question": "Who painted the apples?", "answers": [], "is_impossible": True}]}]},
        {"title": "Zebra", "paragraphs": [{"context": "Zebra crossings appeared in 1951.", "qas": [
            {"id": "z1", "question": "When did zebra crossings appear?",
             "answers": [{"text": "1951", "answer_start": 28}], "is_impossible": False}]}]}]}
    path = tmp_path / "dev-v2.0.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "out"
    code, _, stderr = newsrag("eval", str(path), "--format", "squad", "--split", "tune",
                              "--cache-dir", str(tmp_path / "cache"), "--out", str(out))
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    assert (report["split"], report["n_questions"]) == ("tune", 2)  # Apple's two questions
    assert ABSTENTION <= set(report["modes"]["hybrid"]["metrics"])


def test_oracle_answers_each_question_from_its_gold_article_alone(qa_dir, cache, tmp_path) -> None:
    out = tmp_path / "oracle"
    code, stdout, stderr = newsrag("eval", str(qa_dir), "--format", "qa", "--oracle", "--limit", "6", "--seed", "3",
                                   "--cache-dir", str(cache), "--out", str(out))
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    oracle = report["oracle"]["gold_article"]
    assert ANSWERS <= set(oracle) and "oracle" not in report["modes"]["hybrid"]["metrics"]
    assert oracle["sentence_hit@1"] >= 0.5  # the sample's questions are easy once the right article is given
    assert report["config"]["oracle"] is True
    assert "gold articles only (oracle)" in stdout


def test_answer_scoring_by_hand() -> None:
    """The span is scored when present, else the sentence; RGB accuracy needs every answer group;
    an answer from a deliberately wrong passage counts as counterfactual."""
    q = [Question("r1", "Who won?", answers=["Ann Lee"], extra={"answer_groups": [["Ann Lee"], ["2024"]],
                                                                   "wrong": ["w1"]}),
         Question("r2", "Where?", answers=["Paris"], extra={"answer_groups": [["Paris"]], "wrong": ["w2"]}),
         Question("r3", "When?", answers=["May"], extra={"answer_groups": [["May"]], "wrong": []})]
    asked = [
        Asked("r1", None, {"text": "Ann Lee won in 2024.", "article_id": "p1",
                           "span": {"text": "Ann Lee", "start": 0, "end": 7}}, {}),
        Asked("r2", None, {"text": "It was held in Lyon, not Paris.", "article_id": "w2", "span": None}, {}),
        Asked("r3", None, None, {}),
    ]
    got = answer_metrics(q, asked, "rgb")
    assert got["exact_match"] == pytest.approx(1 / 3)  # span 'Ann Lee'; r2 scores its whole sentence
    assert got["sentence_hit@1"] == pytest.approx(2 / 3)
    assert got["accuracy"] == pytest.approx(2 / 3)  # r1 has both groups, r2 'Paris', r3 abstained
    assert got["counterfactual_rate"] == pytest.approx(1 / 3)  # r2 came from wrong passage w2
    assert "abstain_precision" not in got  # no unanswerable questions in RGB


def test_errors_are_one_line(qa_dir, tmp_path) -> None:
    for args, needle in [(["eval", str(tmp_path / "missing"), "--format", "qa"], "no such file"),
                         (["eval", str(qa_dir), "--format", "qa", "--split", "tune"], "SQuAD only"),
                         (["eval", str(qa_dir), "--format", "qa", "--mode", "fuzzy"], "unknown mode"),
                         (["eval", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")], "cannot read")]:
        code, _, stderr = newsrag(*args)
        assert code == 2 and stderr.count("\n") == 1 and needle in stderr, (args, stderr)
