"""An incremental BM25 index: add and retire documents without a rebuild.

Postings are compact ``array`` columns per term; IDF and the average length are computed
from live statistics at query time, so adding or retiring a document is O(its length).
"""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)

# A short list: BM25 already discounts frequent words; these only add noise to short chat text.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "for",
        "from",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "i'm",
        "if",
        "in",
        "into",
        "is",
        "it",
        "it's",
        "its",
        "me",
        "my",
        "myself",
        "no",
        "nor",
        "of",
        "on",
        "or",
        "our",
        "ours",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "too",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "please",
        "hi",
        "hello",
        "hey",
        "thanks",
        "thank",
    ]
)


class _Stemmer:
    def __init__(self) -> None:
        try:
            import Stemmer  # type: ignore[import-not-found,unused-ignore]

            self._impl: object | None = Stemmer.Stemmer("english")
        except ImportError:  # pragma: no cover - PyStemmer is a declared dependency
            self._impl = None

    def stem_words(self, words: list[str]) -> list[str]:
        if self._impl is None:  # pragma: no cover
            return words
        stemmed: list[str] = self._impl.stemWords(words)  # type: ignore[attr-defined]
        return stemmed


_STEMMER = _Stemmer()


def tokenize(text: str) -> list[str]:
    """Lower-case words, apostrophes folded, stop words dropped, English Snowball stems."""
    words = [w.replace("’", "'") for w in _WORD.findall(text.lower())]
    words = [w for w in words if w not in STOPWORDS]
    return _STEMMER.stem_words(words)


FloatArray = npt.NDArray[np.float32]


class BM25Index:
    """Okapi BM25 over integer document slots (slots are assigned by the caller)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._vocab: dict[str, int] = {}
        self._post_docs: list[array[int]] = []
        self._post_tfs: list[array[float]] = []
        self._df: list[int] = []
        self._doc_terms: dict[int, tuple[int, ...]] = {}
        self._doc_len: array[float] = array("f")
        self._alive: array[int] = array("b")
        self._live = 0
        self._total_len = 0.0
        self._cache: dict[int, tuple[npt.NDArray[np.int32], FloatArray]] = {}

    def __len__(self) -> int:
        return self._live

    @property
    def slots(self) -> int:
        return len(self._doc_len)

    def add(self, slot: int, tokens: Sequence[str]) -> None:
        if slot < len(self._doc_len) and self._alive[slot]:
            raise ValueError(f"slot {slot} is already live")
        while len(self._doc_len) <= slot:
            self._doc_len.append(0.0)
            self._alive.append(0)
        counts = Counter(tokens)
        term_ids: list[int] = []
        for term, tf in counts.items():
            tid = self._vocab.get(term)
            if tid is None:
                tid = len(self._vocab)
                self._vocab[term] = tid
                self._post_docs.append(array("i"))
                self._post_tfs.append(array("f"))
                self._df.append(0)
            self._post_docs[tid].append(slot)
            self._post_tfs[tid].append(float(tf))
            self._df[tid] += 1
            self._cache.pop(tid, None)
            term_ids.append(tid)
        self._doc_terms[slot] = tuple(term_ids)
        self._doc_len[slot] = float(len(tokens))
        self._alive[slot] = 1
        self._live += 1
        self._total_len += len(tokens)

    def retire(self, slot: int) -> None:
        """Stop matching a slot. Its postings stay but are masked; statistics are updated."""
        if slot >= len(self._alive) or not self._alive[slot]:
            return
        for tid in self._doc_terms.pop(slot, ()):
            self._df[tid] -= 1
        self._alive[slot] = 0
        self._live -= 1
        self._total_len -= self._doc_len[slot]

    def _postings(self, tid: int) -> tuple[npt.NDArray[np.int32], FloatArray]:
        cached = self._cache.get(tid)
        if cached is None:
            docs = np.frombuffer(self._post_docs[tid], dtype=np.int32).copy()
            tfs = np.frombuffer(self._post_tfs[tid], dtype=np.float32).copy()
            cached = (docs, tfs)
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[tid] = cached
        return cached

    def scores(self, tokens: Iterable[str], out_size: int | None = None) -> FloatArray:
        """BM25 score of every slot (0 for retired or non-matching slots)."""
        size = max(out_size or 0, len(self._doc_len))
        result = np.zeros(size, dtype=np.float32)
        if self._live == 0:
            return result
        n = self._live
        avgdl = max(self._total_len / n, 1e-9)
        doc_len = np.frombuffer(self._doc_len, dtype=np.float32)
        for term in set(tokens):
            tid = self._vocab.get(term)
            if tid is None or self._df[tid] <= 0:
                continue
            df = self._df[tid]
            idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            docs, tfs = self._postings(tid)
            norm = self.k1 * (1.0 - self.b + self.b * doc_len[docs] / avgdl)
            result[docs] += np.float32(idf) * tfs * (self.k1 + 1.0) / (tfs + norm)
        if self._live < len(self._doc_len):
            alive = np.frombuffer(self._alive, dtype=np.int8)
            result[: len(alive)] *= alive
        return result
