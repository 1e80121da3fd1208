"""Language of short chat text, with py3langid (langid.py retrained, fast on short text)."""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

# Languages considered by default: restricting the candidate set is what makes langid
# reliable on a handful of words (unrestricted, "how do i reset my password" is pidgin).
DEFAULT_LANGUAGES: tuple[str, ...] = (
    "en", "es", "fr", "de", "it", "pt", "nl", "sv", "da", "no", "fi", "pl", "cs", "ro", "hu", "el",
    "tr", "ru", "uk", "ar", "he", "fa", "hi", "bn", "ur", "id", "ms", "vi", "th", "ja", "ko", "zh",
)  # fmt: skip
MIN_CONFIDENCE = 0.3
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)
_NOISE = re.compile(r"https?://\S+|@\w+|#\w+|[\w.+-]+@[\w-]+\.[\w.]+")
_lock = threading.Lock()


@lru_cache(maxsize=8)
def _identifier(languages: tuple[str, ...]) -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    known = set(identifier.nb_classes)
    identifier.set_languages([lang for lang in languages if lang in known] or None)
    return identifier


def detect_language(
    text: str, *, languages: tuple[str, ...] = (), default: str = "en"
) -> tuple[str, float, str]:
    """Return (ISO 639-1 code, confidence, reason). Too little text or low confidence -> ``default``."""
    clean = _NOISE.sub(" ", text)
    if len(_LETTERS.findall(clean)) < 4:
        return default, 0.0, f"language: {default} (default, too little text)"
    with _lock:  # the identifier keeps per-call state in numpy buffers
        lang, confidence = _identifier(languages or DEFAULT_LANGUAGES).classify(clean)
    if confidence < MIN_CONFIDENCE:
        return default, float(confidence), f"language: {default} (default, {lang} only {confidence:.2f})"
    return str(lang), float(confidence), f"language: {lang} ({confidence:.2f})"
