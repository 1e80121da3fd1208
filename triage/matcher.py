"""Hybrid ranking and the calibrated confidence of the best match.

Pure numpy over the score arrays a :class:`~triage.knowledge.KnowledgeIndex` produces:

1. a candidate pool: the top entries by dense cosine and the top entries by BM25;
2. a fused score per entry: cosine + ``lexical_weight`` x BM25 (normalised by the pool max);
3. answer voting: entries sharing an answer (``answer_id``) vote for it with soft weights
   (kNN voting); entries are ranked by their answer's score, then by their own;
4. features of the winner (its score, margin over the best *other* answer, vote share,
   whether the lexical and dense rankers agree) go through a logistic calibration into a
   confidence in 0..1 (fitted on the public dev splits, see docs/triage.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

MatcherKind = Literal["bm25", "dense", "hybrid"]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class MatcherParams:
    pool: int = 100  # candidates taken from each ranker
    lexical_weight: float = 0.2  # weight of normalised BM25 next to cosine in the fused score
    vote_k: int = 10  # neighbours that vote for an answer
    vote_temperature: float = 0.05  # softness of the vote weights (cosine units)
    vote_weight: float = 0.2  # how much the vote share adds to an answer's score
    group_top: int = 3  # an answer's own score: mean of its best N entries' scores


@dataclass(frozen=True)
class Calibration:
    """Logistic calibration: confidence = sigmoid(bias + sum(w_i * feature_i))."""

    bias: float
    weights: tuple[tuple[str, float], ...]

    def __call__(self, features: dict[str, float]) -> float:
        z = self.bias + sum(w * features.get(name, 0.0) for name, w in self.weights)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


# Fitted by bench/calibrate on the banking77 + clinc150 dev splits (see docs/triage.md).
CALIBRATIONS: dict[MatcherKind, Calibration] = {
    "hybrid": Calibration(bias=-4.325, weights=(("score", 3.682), ("margin", 8.169), ("vote", 0.84))),
    "dense": Calibration(bias=-5.136, weights=(("score", 4.355), ("margin", 7.449), ("vote", 2.58))),
    "bm25": Calibration(bias=-4.8, weights=(("score", 3.18), ("margin", 5.86), ("vote", 1.27))),
}


@dataclass(frozen=True)
class Hit:
    entry_id: str
    score: float  # the fused score of this entry
    answer_score: float  # the score of its answer group
    dense: float
    lexical: float


@dataclass(frozen=True)
class MatchResult:
    hits: tuple[Hit, ...]
    confidence: float = 0.0
    features: dict[str, float] = field(default_factory=dict)

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None


def _top(values: npt.NDArray[np.float64], count: int) -> npt.NDArray[np.int64]:
    """Positions of the ``count`` largest ``values`` (all of them when there are fewer)."""
    if len(values) <= count:
        return np.arange(len(values))
    return np.argpartition(-values, count - 1)[:count]


def rank(
    *,
    rows: npt.NDArray[np.int64],
    dense: FloatArray,
    lexical: FloatArray,
    keys: Sequence[str],
    ids: Sequence[str | None],
    matcher: MatcherKind,
    k: int = 10,
    params: MatcherParams | None = None,
    calibration: Calibration | None = None,
) -> MatchResult:
    """Rank the candidate ``rows`` (live slots) given their ``dense`` and ``lexical`` scores
    (arrays aligned with ``rows``); ``keys``/``ids`` are indexed by slot."""
    p = params or MatcherParams()
    if len(rows) == 0:
        return MatchResult(hits=())
    d_all = dense.astype(np.float64)
    lex_all = lexical.astype(np.float64)
    if len(rows) <= 4 * p.pool:
        sel = np.arange(len(rows))
    else:
        parts = []
        if matcher != "bm25":
            parts.append(_top(d_all, p.pool))
        if matcher != "dense":
            parts.append(_top(lex_all, p.pool))
        sel = np.unique(np.concatenate(parts))
    pool = rows[sel]
    d = d_all[sel]
    raw_lex = lex_all[sel]
    lex_max = float(raw_lex.max()) if len(raw_lex) else 0.0
    lex = raw_lex / lex_max if lex_max > 0 else np.zeros_like(raw_lex)
    if matcher == "dense":
        fused = d
    elif matcher == "bm25":
        fused = lex
    else:
        fused = d + p.lexical_weight * lex

    pool_keys = [keys[int(i)] for i in pool]
    order = np.argsort(-fused, kind="stable")
    top = order[: p.vote_k]
    weights = np.exp((fused[top] - fused[top[0]]) / p.vote_temperature)
    total = float(weights.sum())
    votes: dict[str, float] = {}
    for j, w in zip(top, weights, strict=True):
        votes[pool_keys[j]] = votes.get(pool_keys[j], 0.0) + float(w) / total
    best_in: dict[str, list[float]] = {}
    for j in order:  # descending: the first seen are the group's best
        seen = best_in.setdefault(pool_keys[j], [])
        if len(seen) < p.group_top:
            seen.append(float(fused[j]))
    group_score = {g: sum(s) / len(s) + p.vote_weight * votes.get(g, 0.0) for g, s in best_in.items()}
    entry_group = np.array([group_score[g] for g in pool_keys])
    final = np.lexsort((-fused, -entry_group))

    ranked = final[: max(k, 1)]
    hits = tuple(
        Hit(
            entry_id=str(ids[pool[j]]),
            score=float(fused[j]),
            answer_score=float(entry_group[j]),
            dense=float(d[j]),
            lexical=float(raw_lex[j]),
        )
        for j in ranked
    )
    g1 = pool_keys[final[0]]
    others = [s for g, s in group_score.items() if g != g1]
    second = max(others) if others else 0.0
    features = {
        "score": float(fused[final[0]]),
        "dense": float(d[final[0]]),
        "lexical": float(lex[final[0]]),
        "lexical_raw": float(raw_lex[final[0]]),
        "margin": group_score[g1] - second,
        "vote": votes.get(g1, 0.0),
        "agree": _agreement(d, raw_lex, pool_keys, g1, matcher),
    }
    calib = calibration or CALIBRATIONS[matcher]
    return MatchResult(hits=hits, confidence=calib(features), features=features)


def _agreement(
    d: npt.NDArray[np.float64],
    lex: npt.NDArray[np.float64],
    keys: Sequence[str],
    winner: str,
    matcher: MatcherKind,
) -> float:
    """1.0 when both rankers' own best entries carry the winning answer, 0.5 for one."""
    score = 0.0
    if matcher != "bm25" and keys[int(np.argmax(d))] == winner:
        score += 0.5
    if matcher != "dense" and lex.max() > 0 and keys[int(np.argmax(lex))] == winner:
        score += 0.5
    return score
