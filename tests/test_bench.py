"""A tiny run of each benchmark through `newsrag bench` (real model, FAISS, server): shapes, not speeds."""

from __future__ import annotations

import json

import pytest

from newsrag.cli import main
from rag.query import Query

PARAGRAPHS = [
    ("Harbour", "The harbour flooded in March 2021 after three days of rain. Boats were moved inland. "
                "The mayor, Ana Ruiz, thanked the volunteers."),
    ("Council", "The city council voted on the new tax on 4 May 2022. Nine members voted in favour. "
                "The tax funds the tram line."),
    ("Bridge", "Engineers opened the Kell bridge in 2019. It cost 40 million euros. "
               "It links the old town to the port."),
]


@pytest.fixture(scope="module")
def squad_file(tmp_path_factory):
    data = {"data": [{"title": t, "paragraphs": [{"context": c, "qas": [
        {"id": f"{t}-q", "question": f"What happened at the {t.lower()}?",
         "answers": [{"text": c.split(".")[0], "answer_start": 0}]}]}]} for t, c in PARAGRAPHS]}
    path = tmp_path_factory.mktemp("squad") / "dev.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def kept_index(squad_file, tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    out = work / "out"
    assert main(["bench", "ingest", "--dataset", str(squad_file), "--limit", "3", "--work-dir", str(work),
                 "--keep", "--out", str(out)]) == 0
    return work, json.loads((out / "ingest.json").read_text()), (out / "ingest.md").read_text()


def test_ingest_report(kept_index):
    _, report, table = kept_index
    assert report["articles"] == 3 and report["chunks"] >= 3 and report["sentence_texts"] >= 9
    assert report["pipeline"]["chunks_per_s"] > 0 and report["bare_model"]["chunks_per_s"] > 0
    assert 0 < report["ratio_vs_chunks_only"] < report["ratio_vs_all_embedded_texts"]
    assert report["machine"]["cores"] >= 1 and "ratio vs chunks only" in table


def test_query_report_in_process_and_http(kept_index, squad_file, tmp_path):
    work, _, _ = kept_index
    assert main(["bench", "query", "--index", "bench-ingest", "--index-dir", str(work), "--dataset", str(squad_file),
                 "--questions", "3", "--clients", "2", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "query.json").read_text())
    for where in ("in_process", "http"):
        for endpoint in ("answer", "search"):
            for clients in ("1", "2"):
                row = report[where][endpoint][clients]
                assert row["n"] == 3 and 0 < row["p50"] <= row["p95"] <= row["p99"]
    assert report["server_start_to_first_answer_s"] > 0 and report["server_rss_bytes"] > 10 * 2**20


def test_vectors_report(kept_index, tmp_path):
    work, _, _ = kept_index
    assert main(["bench", "vectors", "--index", "bench-ingest", "--index-dir", str(work), "--sizes", "200,400",
                 "--queries", "5", "--nprobe", "1,4", "--bm25-size", "300", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "vectors.json").read_text())
    assert [r["chunks"] for r in report["sizes"]] == [200, 400]
    for row in report["sizes"]:
        by = row["ivf-fp16"]["by_nprobe"]
        assert all(0 <= r["recall@10"] <= 1 for r in by.values())
        assert by[str(row["ivf-fp16"]["params"]["nprobe"])]["recall@10"] >= by["1"]["recall@10"]
    assert report["bm25"]["chunks"] == 300 and report["bm25"]["search_ms"]["p50"] > 0
    assert "flat-ip" in (tmp_path / "vectors.md").read_text()


def test_langchain_side_by_side(squad_file, tmp_path):
    """Both sides ingest the same paragraphs and answer the same questions; LangChain is an optional extra."""
    pytest.importorskip("langchain_community", reason="the bench extra: pip install 'newsrag[bench]'")
    pytest.importorskip("langchain_text_splitters", reason="the bench extra: pip install 'newsrag[bench]'")
    assert main(["bench", "langchain", "--dataset", str(squad_file), "--limit", "3", "--questions", "3", "-k", "2",
                 "--work-dir", str(tmp_path / "work"), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "langchain.json").read_text())
    ours, theirs = report["newsrag"], report["langchain"]
    assert report["questions"] == 3 and ours["chunks"] >= 3 and theirs["chunks"] == 3  # each paragraph < 1000 chars
    assert ours["build_s"] > 0 and theirs["build_s"] > 0
    for side in (ours["search_ms"], ours["answer_ms"], theirs["search_ms"]):
        assert side["n"] == 3 and 0 < side["p50"] <= side["p95"]
    for quality in (ours["quality_search"], theirs["quality_search"]):
        assert 0 <= quality["recall@1"] <= quality["recall@5"] <= 1
    lo = (ours["build_s"] - 5e-4) / (theirs["build_s"] + 5e-4)  # build_s is rounded to the millisecond
    hi = (ours["build_s"] + 5e-4) / (theirs["build_s"] - 5e-4)
    assert lo - 0.01 <= report["ratios"]["build_s_ours_over_theirs"] <= hi + 0.01
    assert not (tmp_path / "work" / "bench-peer").exists()
    assert "LangChain FAISS" in (tmp_path / "out" / "langchain.md").read_text()


def test_synthetic_index_opens_like_any_other(kept_index, tmp_path):
    """Copies of the kept index, written through the store: it opens, checks clean and answers as any other."""
    from rag.archive import Archive

    work, ingest, _ = kept_index
    assert main(["bench", "synthetic", "--base", str(work / "bench-ingest"), "--chunks", str(3 * ingest["chunks"]),
                 "--name", "synthetic-test", "--index-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "synthetic.json").read_text())
    assert report["copies"] == 3 and report["chunks"] == 3 * ingest["chunks"] and report["articles"] == 9
    archive = Archive.open("synthetic-test", tmp_path)
    assert archive.check() == []
    assert archive.stats()["chunks"] == report["chunks"]
    ids = {row[0] for row in archive.store.connect().execute("SELECT id FROM articles")}
    assert {"Harbour-0", "Harbour-0~copy1", "Harbour-0~copy2"} <= ids
    result = archive.answer(Query("When did the harbour flood?"))
    assert result["passages"][0]["article_id"].startswith("Harbour-0")
    assert "March 2021" in result["answer"]["text"]
    copy = archive.get_article("Harbour-0~copy2")
    assert copy.title == "Harbour (copy 2)" and copy.text == archive.get_article("Harbour-0").text
    with pytest.raises(SystemExit):  # never overwrites an index it did not build
        main(["bench", "synthetic", "--base", str(work / "bench-ingest"), "--chunks", "10", "--name", "bench-ingest",
              "--index-dir", str(work), "--out", str(tmp_path / "out2")])



def test_writes_report(kept_index, tmp_path):
    """`bench writes` on a tiny synthetic index: each write is proved visible (then gone) by a search,
    the index checks clean after, and the store report adds up."""
    work, ingest, _ = kept_index
    size = 2 * ingest["chunks"]
    assert main(["bench", "writes", "--base", str(work / "bench-ingest"), "--sizes", str(size), "--rounds", "2",
                 "--index-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    (row,) = json.loads((tmp_path / "out" / "writes.json").read_text())["sizes"]
    assert row["chunks"] == size and len(row["ingest_s"]["all"]) == 2 and len(row["delete_s"]["all"]) == 2
    assert row["store"]["chunks"] == size and row["store"]["float16_chunk_vectors_recall@10"] > 0.9
    assert "| chunks | segments" in (tmp_path / "out" / "writes.md").read_text()


def test_news_shaped_articles_beside_the_bare_model(squad_file, tmp_path):
    """Articles of 2k-60k chars made of the given paragraphs, ingested and then encoded bare; the rates
    and the ratio come from the same counts."""
    assert main(["bench", "news", "--sources", str(squad_file), "--articles", "3", "--work-dir", str(tmp_path / "work"),
                 "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "news.json").read_text())
    assert report["articles"] == 3 and 2_000 <= report["chars"]["min"] <= report["chars"]["max"] <= 60_000
    assert report["chunks"] >= 3 and report["sentences"] > report["chunks"] and report["model_tokens"] > 0
    pipeline, bare = report["pipeline"], report["bare_model"]
    assert pipeline["model_tokens_per_s"] > 0 and bare["model_tokens_per_s"] > 0
    assert report["ratio_pipeline_over_bare"] == pytest.approx(bare["seconds"] / pipeline["seconds"], abs=0.01)
    assert not (tmp_path / "work" / "bench-news").exists()
    assert "model tokens/s" in (tmp_path / "out" / "news.md").read_text()
