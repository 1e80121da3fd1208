"""Is this a support question (or problem report, or request) at all?

Works on short chat text without a question mark: "card not arrived yet" and "app crashes
on login" are questions; "thanks!", "good morning all", "lol same" and spam are not.
"""

from __future__ import annotations

import re

from triage.lexical import tokenize
from triage.textmatch import find_phrases, phrase_regex

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@\w+")
_WORDS = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)

INTERROGATIVES = (
    "how", "what", "why", "when", "where", "who", "which", "whats", "what's", "hows", "how's",
    "can", "could", "is", "are", "am", "does", "do", "did", "will", "would", "should", "shall",
    "has", "have", "may", "might", "anyone", "anybody", "any", "is there", "are there", "wondering",
)  # fmt: skip
PROBLEM_WORDS = (
    "not", "n't", "no longer", "never", "error", "errors", "crash", "crashes", "crashed", "crashing",
    "fail", "fails", "failed", "failing", "failure", "broken", "broke", "bug", "bugs", "buggy",
    "issue", "issues", "problem", "problems", "stuck", "unable", "can't", "cannot", "cant", "won't",
    "wont", "doesn't", "doesnt", "didn't", "didnt", "isn't", "isnt", "aren't", "wasn't", "missing",
    "wrong", "lost", "declined", "locked", "blocked", "frozen", "freezes", "hangs", "slow",
    "still", "yet", "keeps", "glitch", "down", "disappeared", "gone", "charged", "rejected",
    "denied", "invalid", "expired", "pending", "delayed", "late", "nothing happens", "no way to",
    "does nothing", "stopped", "disconnects", "unresponsive", "timeout", "timed out",
)  # fmt: skip
# Stems (Snowball) of words that make a first-person statement a problem report.
PROBLEM_STEMS = frozenset(
    (
        "incorrect", "mistak", "error", "overcharg", "undercharg", "stolen", "steal", "forgot",
        "forget", "faulti", "fault", "malfunct", "unauthor", "suspici", "fraudul", "weird", "strang",
        "odd", "unexpect", "duplic", "twice", "revert", "cancel", "trouble", "difficulti", "hard",
        "unabl", "unhappi", "disappoint", "confus", "lost", "lose", "miss", "stuck", "fee", "charg",
        "expir", "block", "freez", "froze", "declin", "reject", "refus", "problem", "issu", "bug",
        "broke", "broken", "wrong", "differ", "less", "extra", "forev", "long", "took", "ate",
        "swallow", "hack", "compromis", "scam", "fake", "never", "delay", "late", "slow", "interest",
        "prefer", "wonder", "curious",
    )
)  # fmt: skip
REQUEST_WORDS = (
    "help", "need", "needs", "want", "wanna", "please", "pls", "plz", "i'd like", "i would like",
    "trying to", "tried to", "try to", "looking for", "how to", "where to", "what to", "advice",
    "recommend", "suggest", "explain", "tell me", "show me", "let me know", "support", "question",
    "cancel", "change", "reset", "update", "delete", "remove", "add", "activate", "transfer",
    "order", "ordered", "refund", "return", "upgrade", "downgrade", "install", "setup", "set up",
    "configure", "connect", "verify", "unlock", "recover", "request", "apply", "get",
)  # fmt: skip
CHATTER = frozenset(
    [
        "hi",
        "hello",
        "hey",
        "heya",
        "hiya",
        "yo",
        "sup",
        "gm",
        "gn",
        "morning",
        "evening",
        "afternoon",
        "night",
        "good",
        "great",
        "nice",
        "cool",
        "awesome",
        "amazing",
        "perfect",
        "lovely",
        "thanks",
        "thank",
        "thx",
        "ty",
        "tysm",
        "cheers",
        "appreciated",
        "appreciate",
        "much",
        "so",
        "very",
        "a",
        "lot",
        "lol",
        "lmao",
        "rofl",
        "haha",
        "hahaha",
        "hehe",
        "xd",
        "omg",
        "wow",
        "ok",
        "okay",
        "k",
        "kk",
        "alright",
        "sure",
        "yes",
        "yeah",
        "yep",
        "yup",
        "no",
        "nope",
        "nah",
        "np",
        "bye",
        "goodbye",
        "cya",
        "see",
        "you",
        "later",
        "soon",
        "tomorrow",
        "everyone",
        "all",
        "guys",
        "folks",
        "team",
        "people",
        "welcome",
        "congrats",
        "congratulations",
        "happy",
        "birthday",
        "friday",
        "weekend",
        "same",
        "here",
        "me",
        "too",
        "agreed",
        "true",
        "indeed",
        "exactly",
        "fine",
        "right",
        "got",
        "it",
        "works",
        "worked",
        "solved",
        "fixed",
        "that",
        "this",
        "it",
        "is",
        "was",
        "for",
        "the",
        "and",
        "to",
        "of",
        "you",
        "u",
        "just",
        "well",
        "done",
        "job",
        "again",
        "mate",
        "man",
        "bro",
        "dude",
        "sir",
        "madam",
        "love",
        "it",
        "again",
        ":)",
        ":(",
        ":d",
        "❤️",
        "👍",
        "🙏",
        "😂",
        "🎉",
        "🔥",
        "😊",
        "👋",
    ]
)
CHATTER_PHRASES = (
    "not bad", "no worries", "no problem", "no prob", "not really", "no thanks", "no thank you",
    "never mind", "nevermind", "not yet", "can't wait", "cant wait", "well done", "good job",
    "keep it up", "have a nice day", "have a good one", "sounds good", "makes sense", "my bad",
)  # fmt: skip
SPAM_WORDS = (
    "airdrop", "giveaway", "free crypto", "free money", "earn $", "earn money", "make money",
    "dm me", "dm for", "whatsapp me", "telegram me", "investment opportunity", "guaranteed profit",
    "click here", "claim your", "limited offer", "promo code", "onlyfans", "casino", "betting tips",
    "forex signals", "100x", "pump",
)  # fmt: skip


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORDS.findall(text)]


def is_support_question(text: str, *, addressed: bool = False) -> tuple[bool, str]:
    """Return (is a question/problem/request, reason).

    ``addressed``: the message mentions or DMs the bot; then any substantial text that is not
    chatter counts as a request ("cancel my subscription").
    """
    urls = _URL.findall(text)
    stripped = _MENTION.sub(" ", _URL.sub(" ", text)).strip()
    words = _words(stripped)
    if not words:
        return False, "not a question: no text"
    spam = find_phrases(text, SPAM_WORDS)
    if spam or (len(urls) >= 3):
        return False, f"not a question: spam ({spam[0] if spam else 'many links'})"
    chatter_phrases = phrase_regex(CHATTER_PHRASES)
    rest = _words(chatter_phrases.sub(" ", stripped)) if chatter_phrases else words
    if all(w in CHATTER for w in rest):
        return False, "not a question: greeting, thanks or chatter"
    if "?" in stripped:
        return True, "question: question mark"
    first = " ".join(words[:2])
    if words[0] in INTERROGATIVES or first in INTERROGATIVES:
        return True, f"question: starts with '{words[0]}'"
    problem = find_phrases(stripped, PROBLEM_WORDS) or [w for w in words if w.endswith("n't")]
    content = [w for w in words if w not in CHATTER]
    if problem and content:
        return True, f"question: problem report ('{problem[0]}')"
    stems = [t for t in tokenize(stripped) if t in PROBLEM_STEMS]
    if stems and content:
        return True, f"question: problem report ('{stems[0]}')"
    request = find_phrases(stripped, REQUEST_WORDS)
    if request and content:
        return True, f"question: request ('{request[0]}')"
    if addressed and len(content) >= 2:
        return True, "question: addressed to the bot"
    return False, "not a question: no question, problem or request"
