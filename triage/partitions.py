"""Coarse partitions (IVF) over the dense vectors, so a query scans a few percent of a large base.

Spherical k-means on a sample gives ``sqrt(n)`` centroids; every vector lives in the list of its
nearest centroid; a query scans the lists of its ``nprobe`` nearest centroids. New vectors are
assigned on arrival (no rebuild); the partitioning is refreshed when the base has doubled.
"""

from __future__ import annotations

from array import array

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def spherical_kmeans(
    vectors: FloatMatrix, clusters: int, *, iterations: int = 8, seed: int = 0
) -> FloatMatrix:
    rng = np.random.default_rng(seed)
    centroids = vectors[rng.choice(len(vectors), size=clusters, replace=False)].copy()
    for _ in range(iterations):
        assign = _nearest(vectors, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, vectors)
        empty = np.flatnonzero(~sums.any(axis=1))
        if len(empty):
            sums[empty] = vectors[rng.choice(len(vectors), size=len(empty), replace=False)]
        centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return centroids.astype(np.float32)


def _nearest(vectors: FloatMatrix, centroids: FloatMatrix, chunk: int = 8192) -> IntArray:
    out = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        out[start : start + chunk] = np.argmax(vectors[start : start + chunk] @ centroids.T, axis=1)
    return out


class Partitions:
    """Inverted lists of slots by nearest centroid."""

    def __init__(self, vectors: FloatMatrix, slots: IntArray, *, seed: int = 0) -> None:
        count = len(slots)
        self.clusters = int(min(4096, max(16, round(np.sqrt(count)))))
        sample = slots
        if count > 50_000:
            sample = np.random.default_rng(seed).choice(slots, size=50_000, replace=False)
        self.centroids = spherical_kmeans(vectors[sample], self.clusters, seed=seed)
        self.lists: list[array[int]] = [array("i") for _ in range(self.clusters)]
        self.built_for = count
        self.add(vectors[slots], slots)

    def add(self, vectors: FloatMatrix, slots: IntArray) -> None:
        for slot, cluster in zip(slots.tolist(), _nearest(vectors, self.centroids).tolist(), strict=True):
            self.lists[cluster].append(slot)

    def probe(self, query: FloatMatrix, nprobe: int) -> IntArray:
        """Slots in the ``nprobe`` lists nearest to ``query`` (retired slots included: mask them)."""
        nprobe = min(nprobe, self.clusters)
        nearest = np.argpartition(-(self.centroids @ query), nprobe - 1)[:nprobe]
        parts = [np.frombuffer(self.lists[c], dtype=np.int32) for c in nearest.tolist()]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
