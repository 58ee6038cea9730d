"""Zero-shot topic labels on BBC News with the real default model."""

from __future__ import annotations

import numpy as np

from embed_sql.pipelines.classify import classify
from tests.corpus import bbc_articles

# the corpus's folder names, as words a sentence model knows
TOPICS = {
    "business": "business",
    "entertainment": "entertainment",
    "politics": "politics",
    "sports": "sport",
    "tech": "technology",
}


def test_topic_labels_of_bbc_leads_beat_chance_by_far() -> None:
    articles = bbc_articles()[::5]  # 445 articles, every topic
    leads = [body.split(". ")[0] for _, _, body in articles]
    want = np.array([TOPICS[t] for t, _, _ in articles])
    out = classify(leads, list(TOPICS.values()), template="This news story is about {}.")
    got = np.array(out.field("label").to_pylist())
    accuracy = float((got == want).mean())
    assert accuracy > 0.6, accuracy  # five topics: chance is 0.2
    confident = np.asarray(out.field("margin")) > 0.05
    assert float((got[confident] == want[confident]).mean()) > accuracy  # margin means something
