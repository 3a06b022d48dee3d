"""Model-based scores of training candidates (ARCHITECTURE "Scores as records"): data about an example, computed by
a model, for selection where there are no votes. ifd.py: the instruction-following difficulty from the base model's
own losses; rater.py: quality and complexity ratings (1-6) through any judge backend; deita.py: selection by
the combined score, best first, kept apart by an embedding-distance threshold (DEITA).

Every score is a row of the shared content-keyed cache (judge/cache.py KeyedCache), keyed by `score_key`: its
kind, the scorer's fingerprint and the content the scorer saw. So a re-run scores nothing twice, the same text
from two sources is scored once, and a kill -9 loses only the batch being scored (rows are flushed per batch).
A score row is {"key", "kind", "score": float or None, "raw": the reply or "", "meta": what else the scorer said}.
"""

from __future__ import annotations

from typing import Any

from lessismore.records import content_id


def score_key(kind: str, fingerprint: str, *content: Any) -> str:
    """The cache key of one score: what scored it (`fingerprint`) and what it saw (`content`), never the row's id.

    >>> score_key("ifd", "m1", ["user", "Hi"]) == score_key("ifd", "m1", ["user", "Hi"]) != score_key("ifd", "m2",
    ...     ["user", "Hi"])
    True
    """
    return content_id("score", kind, fingerprint, *content)
