"""The knowledge base: past questions with their accepted answers, and the index over them.

:class:`KnowledgeIndex` keeps a BM25 index and a dense vector store side by side, keyed by
integer slots. Adding, updating and retiring an entry touch only that entry (no rebuild);
``save``/``load`` persist the entries and their vectors so a restart does not re-embed.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from triage.embedder import Encoder
from triage.lexical import BM25Index, tokenize
from triage.matcher import MatcherKind, MatcherParams, MatchResult, rank
from triage.partitions import Partitions

FORMAT_VERSION = 1
FloatMatrix = npt.NDArray[np.float32]


class KnowledgeEntry(BaseModel):
    """One past question and its accepted answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    body: str = ""
    answer: str = ""
    answer_id: str | None = None  # entries sharing it share one answer (FAQ phrasings)
    credit: str | None = None  # who answered, for attribution
    link: str | None = None  # the original thread
    topic: str | None = None
    language: str | None = None
    votes: int = 0
    served: int = 0
    accepted: int = 0
    rejected: int = 0

    @property
    def question(self) -> str:
        return f"{self.title}. {self.body}" if self.body.strip() else self.title

    @property
    def answer_key(self) -> str:
        return self.answer_id or f"entry:{self.id}"

    def feedback_factor(self) -> float:
        """Multiplier on confidence from served-answer feedback (a Beta(2, 0) prior on acceptance).

        No feedback: 1.0. One rejection: 0.67, two: 0.5; acceptances pull it back up.
        """
        prior = 2.0
        return (self.accepted + prior) / (self.accepted + self.rejected + prior)


ProgressFn = Callable[[int], None]
P = ParamSpec("P")
R = TypeVar("R")


def _locked(method: Callable[P, R]) -> Callable[P, R]:
    """Serialise a method on the index's re-entrant lock (searches vs. incremental updates)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with args[0]._lock:  # type: ignore[attr-defined]
            return method(*args, **kwargs)

    return wrapper


class KnowledgeIndex:
    """Hybrid (BM25 + dense) index over :class:`KnowledgeEntry` values.

    Thread-safe: searches and updates take one re-entrant lock (a bulk ``add_many`` takes it
    per batch, so searches interleave with a long import).
    """

    def __init__(self, encoder: Encoder, *, partition_min: int = 20_000, probe_share: float = 0.06) -> None:
        """``partition_min``: from this many entries on, dense search scans only the nearest
        ~``probe_share`` of the base (IVF partitions) plus every strong lexical candidate."""
        self.encoder = encoder
        self._lock = threading.RLock()
        self.partition_min = partition_min
        self.probe_share = probe_share
        self._partitions: Partitions | None = None
        self._lexical = BM25Index()
        # Row per slot: the embedding of the whole question, and of its title alone when the
        # entry has a body (forum posts); unwritten zero rows cost no memory (calloc pages).
        self._vectors: FloatMatrix = np.zeros((1024, encoder.dim), dtype=np.float32)
        # Title vectors are stored compactly, only for entries with a body: slot -> row (or -1).
        self._title_vectors: FloatMatrix = np.zeros((64, encoder.dim), dtype=np.float32)
        self._title_count = 0
        self._title_row = np.full(1024, -1, dtype=np.int64)
        self._has_title = np.zeros(1024, dtype=bool)
        self._alive = np.zeros(1024, dtype=bool)
        self._slots = 0
        self._entries: dict[str, KnowledgeEntry] = {}
        self._slot_of: dict[str, int] = {}
        self._id_at: list[str | None] = []
        self._key_at: list[str] = []

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._entries

    def get(self, entry_id: str) -> KnowledgeEntry | None:
        return self._entries.get(entry_id)

    @_locked
    def entries(self) -> list[KnowledgeEntry]:
        return list(self._entries.values())

    # ------------------------------------------------------------------ writing

    @_locked
    def add(self, entry: KnowledgeEntry) -> None:
        """Add or replace one entry (replacing re-embeds only if the question changed)."""
        self.add_many([entry])

    @_locked
    def update(self, entry: KnowledgeEntry) -> None:
        """Replace an existing entry (edit by staff, new counts)."""
        if entry.id not in self._entries:
            raise KeyError(entry.id)
        self.add_many([entry])

    @_locked
    def retire(self, entry_id: str) -> bool:
        """Remove an entry from matching. Returns False if it was not there."""
        slot = self._slot_of.pop(entry_id, None)
        if slot is None:
            return False
        del self._entries[entry_id]
        self._lexical.retire(slot)
        self._alive[slot] = False
        self._has_title[slot] = False
        self._id_at[slot] = None
        return True

    @_locked
    def record_feedback(self, entry_id: str, *, accepted: bool) -> KnowledgeEntry | None:
        """Count an accepted or rejected auto-answer; rejections lower future confidence."""
        entry = self._entries.get(entry_id)
        if entry is None:
            return None
        field = "accepted" if accepted else "rejected"
        updated = entry.model_copy(update={field: getattr(entry, field) + 1})
        self._entries[entry_id] = updated  # text unchanged: no re-indexing needed
        return updated

    @_locked
    def record_served(self, entry_id: str) -> None:
        entry = self._entries.get(entry_id)
        if entry is not None:
            self._entries[entry_id] = entry.model_copy(update={"served": entry.served + 1})

    def add_many(
        self,
        entries: Iterable[KnowledgeEntry],
        *,
        batch_size: int = 256,
        progress: ProgressFn | None = None,
        vectors: FloatMatrix | None = None,
    ) -> int:
        """Add or replace entries in batches; ``progress(n)`` is called after each batch."""
        batch: list[KnowledgeEntry] = []
        done = 0
        offset = 0
        for entry in entries:
            batch.append(entry)
            if len(batch) >= batch_size:
                chunk = None if vectors is None else vectors[offset : offset + len(batch)]
                self._add_batch(batch, chunk)
                offset += len(batch)
                done += len(batch)
                if progress is not None:
                    progress(len(batch))
                batch = []
        if batch:
            chunk = None if vectors is None else vectors[offset : offset + len(batch)]
            self._add_batch(batch, chunk)
            done += len(batch)
            if progress is not None:
                progress(len(batch))
        return done

    def _add_batch(self, batch: Sequence[KnowledgeEntry], vectors: FloatMatrix | None) -> None:
        """``vectors`` (optional, from ``save``) has 2 x dim columns: question, then title.

        Embedding happens outside the lock; only the (fast) index mutation holds it.
        """
        # Later duplicates of an id in the same batch win.
        unique: dict[str, KnowledgeEntry] = {e.id: e for e in batch}
        todo = list(unique.values())
        dim = self.encoder.dim
        if vectors is None:
            vecs = np.zeros((len(todo), 2 * dim), dtype=np.float32)
            need: list[int] = []
            with self._lock:
                for i, entry in enumerate(todo):
                    old = self._entries.get(entry.id)
                    if old is not None and old.question == entry.question:
                        slot = self._slot_of[entry.id]
                        vecs[i, :dim] = self._vectors[slot]
                        if self._has_title[slot]:
                            vecs[i, dim:] = self._title_vectors[self._title_row[slot]]
                    else:
                        need.append(i)
            if need:
                texts = [todo[i].question for i in need]
                titled = [i for i in need if todo[i].body.strip()]
                texts += [todo[i].title for i in titled]
                encoded = self.encoder.encode(texts)
                vecs[need, :dim] = encoded[: len(need)]
                if titled:
                    vecs[titled, dim:] = encoded[len(need) :]
        else:
            vecs = np.asarray(vectors, dtype=np.float32)
            if len(batch) != len(todo):
                keep = {e.id: i for i, e in enumerate(batch)}
                vecs = vecs[[keep[e.id] for e in todo]]
        with self._lock:
            self._insert(todo, vecs)

    def _insert(self, todo: Sequence[KnowledgeEntry], vecs: FloatMatrix) -> None:
        dim = self.encoder.dim
        new_slots: list[int] = []
        for entry, vec in zip(todo, vecs, strict=True):
            self.retire(entry.id)
            slot = self._new_slot()
            new_slots.append(slot)
            self._vectors[slot] = vec[:dim]
            if entry.body.strip():
                if self._title_count >= len(self._title_vectors):
                    self._title_vectors = _grown(self._title_vectors, 2 * len(self._title_vectors))
                self._title_vectors[self._title_count] = vec[dim:]
                self._title_row[slot] = self._title_count
                self._title_count += 1
                self._has_title[slot] = True
            self._alive[slot] = True
            self._lexical.add(slot, tokenize(entry.question))
            self._entries[entry.id] = entry
            self._slot_of[entry.id] = slot
            self._id_at[slot] = entry.id
            self._key_at[slot] = entry.answer_key
        self._update_partitions(np.array(new_slots, dtype=np.int64))

    def _update_partitions(self, new_slots: npt.NDArray[np.int64]) -> None:
        live = len(self._entries)
        if live < self.partition_min:
            self._partitions = None
        elif self._partitions is None or live > 2 * self._partitions.built_for:
            slots = np.flatnonzero(self._alive[: self._slots]).astype(np.int64)
            self._partitions = Partitions(self._vectors, slots)
        elif len(new_slots):
            self._partitions.add(self._vectors[new_slots], new_slots)

    def _new_slot(self) -> int:
        slot = self._slots
        if slot >= len(self._alive):
            size = 2 * len(self._alive)
            self._vectors = _grown(self._vectors, size)
            self._has_title = _grown(self._has_title, size)
            title_row = np.full(size, -1, dtype=np.int64)
            title_row[: len(self._title_row)] = self._title_row
            self._title_row = title_row
            self._alive = _grown(self._alive, size)
        self._slots += 1
        self._id_at.append(None)
        self._key_at.append("")
        return slot

    # ------------------------------------------------------------------ matching

    @_locked
    def search(
        self,
        text: str,
        *,
        title: str | None = None,
        matcher: MatcherKind = "hybrid",
        k: int = 10,
        candidates: Sequence[str] | None = None,
        params: MatcherParams | None = None,
    ) -> MatchResult:
        """Rank entries for ``text``; ``candidates`` restricts ranking to those entry ids.

        ``text`` is the whole question. ``title`` (a forum post's subject, when the message
        has one besides its body) is also compared with the titles of entries that have a
        body; the two cosines are averaged for those entries.
        """
        n = self._slots
        p = params or MatcherParams()
        lexical = (
            self._lexical.scores(tokenize(text), out_size=n)[:n]
            if matcher != "dense"
            else np.zeros(n, dtype=np.float32)
        )
        alive = self._alive[:n]
        partitioned = self._partitions is not None and candidates is None and matcher != "bm25"
        if partitioned:
            rows = np.zeros(0, dtype=np.int64)  # chosen below, from the query vector
        elif candidates is not None:
            rows = np.unique(
                np.array([self._slot_of[c] for c in candidates if c in self._slot_of], dtype=np.int64)
            )
            rows = rows[alive[rows]]
        else:
            rows = np.flatnonzero(alive)
        if matcher == "bm25":
            dense = np.zeros(len(rows), dtype=np.float32)
        else:
            titled = bool(title and title.strip() and title.strip() != text.strip())
            qvecs = self.encoder.encode([text, title] if titled and title else [text])
            if partitioned:
                # Scan the nearest partitions plus the best lexical entries, not the whole base
                # (a mask, not a sort: rows come out ascending, so the gather below reads in order).
                assert self._partitions is not None
                mask = np.zeros(n, dtype=bool)
                mask[self._partitions.probe(qvecs[0], self._nprobe())] = True
                if matcher != "dense":
                    hits = np.flatnonzero(lexical)
                    if len(hits) > p.pool:
                        hits = hits[np.argpartition(-lexical[hits], p.pool - 1)[: p.pool]]
                    mask[hits] = True
                rows = np.flatnonzero(mask & alive)
            if len(rows) > n // 4:
                # Most of the base: one contiguous matrix-vector product beats gathering rows.
                dense = (self._vectors[:n] @ qvecs[0])[rows]
            else:
                dense = np.take(self._vectors, rows, axis=0) @ qvecs[0]  # take: faster than [rows]
            if len(qvecs) > 1:
                titled_at = np.flatnonzero(self._has_title[rows])
                if len(titled_at):
                    title_rows = self._title_row[rows[titled_at]]
                    dense[titled_at] = 0.5 * (dense[titled_at] + self._title_vectors[title_rows] @ qvecs[1])
        return rank(
            rows=rows,
            dense=dense,
            lexical=lexical[rows],
            keys=self._key_at,
            ids=self._id_at,
            matcher=matcher,
            k=k,
            params=p,
        )

    def _nprobe(self) -> int:
        assert self._partitions is not None
        return max(8, round(self._partitions.clusters * self.probe_share))

    @_locked
    def vectors_of(self, entry_ids: Sequence[str]) -> FloatMatrix:
        """Rows of [question vector | title vector] for the given entries."""
        slots = [self._slot_of[i] for i in entry_ids]
        titles = np.zeros((len(slots), self.encoder.dim), dtype=np.float32)
        for i, slot in enumerate(slots):
            if self._has_title[slot]:
                titles[i] = self._title_vectors[self._title_row[slot]]
        return np.hstack([self._vectors[slots], titles])

    # ------------------------------------------------------------------ persistence

    @_locked
    def save(self, directory: Path) -> None:
        """Write ``entries.jsonl``, ``vectors.npy`` and ``meta.json`` (meta last: the commit)."""
        directory.mkdir(parents=True, exist_ok=True)
        ids = list(self._entries)
        meta = {
            "format": FORMAT_VERSION,
            "model_id": self.encoder.model_id,
            "dim": self.encoder.dim,
            "count": len(ids),
        }
        tmp_entries = directory / "entries.jsonl.tmp"
        with tmp_entries.open("w", encoding="utf-8") as fh:
            for entry_id in ids:
                fh.write(self._entries[entry_id].model_dump_json() + "\n")
        tmp_vectors = directory / "vectors.tmp.npy"
        vecs = self.vectors_of(ids) if ids else np.zeros((0, 2 * self.encoder.dim), dtype=np.float32)
        np.save(tmp_vectors, vecs)
        (directory / "meta.json").unlink(missing_ok=True)
        os.replace(tmp_entries, directory / "entries.jsonl")
        os.replace(tmp_vectors, directory / "vectors.npy")
        tmp_meta = directory / "meta.json.tmp"
        tmp_meta.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp_meta, directory / "meta.json")

    @classmethod
    def load(cls, directory: Path, encoder: Encoder) -> KnowledgeIndex:
        """Load a saved index; raises ``FileNotFoundError``/``ValueError`` when missing or stale
        (the core then rebuilds from the database)."""
        meta_path = directory / "meta.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"index format {meta.get('format')} != {FORMAT_VERSION}")
        if meta.get("model_id") != encoder.model_id or meta.get("dim") != encoder.dim:
            raise ValueError("index was built with another embedding model")
        with (directory / "entries.jsonl").open(encoding="utf-8") as fh:
            entries = [KnowledgeEntry.model_validate_json(line) for line in fh if line.strip()]
        vectors = np.load(directory / "vectors.npy")
        if len(entries) != meta.get("count") or vectors.shape != (len(entries), 2 * encoder.dim):
            raise ValueError("index files are inconsistent")
        index = cls(encoder)
        index.add_many(entries, batch_size=4096, vectors=vectors)
        return index


def _grown(array: npt.NDArray[Any], size: int) -> npt.NDArray[Any]:
    """A larger zero-filled copy (np.zeros pages stay untouched until written)."""
    out = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    out[: len(array)] = array
    return out  # (the copied part is touched; the rest stays unmapped until written)


def index_exists(directory: Path) -> bool:
    return (directory / "meta.json").is_file()


__all__ = [
    "KnowledgeEntry",
    "KnowledgeIndex",
    "MatchResult",
    "MatcherKind",
    "MatcherParams",
    "index_exists",
]
