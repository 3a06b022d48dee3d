"""validate/kept.py: the kept-id memory answers as a dict of id -> (file, row) would, in a fraction of the bytes."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from lessismore.records import content_id
from lessismore.validate import kept as kept_module
from lessismore.validate.kept import KeptIds


def test_it_answers_as_a_dict_across_merges_and_odd_ids_and_rows(monkeypatch):
    monkeypatch.setattr(kept_module, "_MERGE", 7)  # many merges and chunk top-ups on a small input
    rng = random.Random(0)
    ids = [content_id(k) for k in range(200)] + ["not-hex-id", "Z" * 16, "lima-0001"]
    rows = [str(rng.randrange(10**6)) for _ in range(100)] + ["0", "007", "3:2", "line 9", "1" * 25] * 20 + ["5"] * 3
    files = [f"data/{rng.choice('abc')}.xml" for _ in ids]
    kept, truth = KeptIds(), {}
    for k, (key, file, row) in enumerate(zip(ids, files, rows, strict=True)):
        kept.add(key, file, row)
        truth[key] = (file, row)
        if k % 13 == 0:  # asked in the middle of filling, too
            assert all(kept.where(i) == truth[i] for i in truth)
    assert len(kept) == len(truth) == len(ids)
    assert all(i in kept and kept.where(i) == truth[i] for i in truth)
    for missing in (content_id("never"), "abc", "ffffffffffffffff"):
        assert missing not in kept
        with pytest.raises(KeyError):
            kept.where(missing)


def test_a_million_ids_cost_tens_of_bytes_each():
    n = 200_000
    ids = [f"{random.Random(k).getrandbits(64):016x}" for k in range(n)]
    tracemalloc.start()
    kept = KeptIds()
    for k, key in enumerate(ids):
        kept.add(key, "data/se/Posts.xml", str(k))
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert size / n < 60, f"{size / n:.0f} bytes an id"  # the dict it replaced: about 280
    assert kept.where(ids[12345]) == ("data/se/Posts.xml", "12345")
