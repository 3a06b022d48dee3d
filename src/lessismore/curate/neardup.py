"""Near-duplicate removal with MinHash LSH (datasketch): a step of curate, after exact dedup and decontamination.

Two examples whose prompt + response share most of their word shingles teach the model the same thing twice
(reposts, mirrored wikiHow steps, templated Alpaca rows). The text is `decontam.words` of prompt + response
(NFKC, casefold, punctuation and apostrophes ignored); its shingles are every run of `shingle` words (a text with
fewer words is one shingle; an empty text is the empty shingle). Each example gets a MinHash with a fixed seed and
a fixed, machine-independent hash, so signatures are the same on every run and machine. The signatures are
cut into LSH bands (datasketch's optimiser picks bands x rows for the threshold); rows that share every value of
one band are candidates, and a candidate pair whose estimated Jaccard similarity is >= threshold is an edge.
Union-find over the edges (scipy's connected components) makes the groups; each group keeps its earliest row in
input order and drops the others with reason "near_duplicate:<kept id>". A group is transitive: a near-copy of a
near-copy goes too, as in the dedup pipelines of large corpora. Nothing here depends on which batch a row came in,
so curate computes signatures batch by batch (on any engine) and groups them once. `near_dup_quality` checks the
LSH against exact Jaccard on a sample.

The bands are grouped in numpy (one 64-bit hash of each band's values, sorted) rather than in datasketch's
MinHashLSH: its per-band Python dicts of byte keys took ~1 KB a row, ten times the signature itself, and a Python
call a row and band (measured below).

Speed: each distinct word is hashed once a batch (blake2b), shingle hashes are rolled over those in numpy, and the
signatures of a whole batch are computed at once (`signatures`): datasketch's affine32 MinHash (its permutations,
its MurmurHash3 pre-mix, a * h + b in 32 bits, the minimum), applied to every shingle of the batch in one numpy
pass a permutation instead of a MinHash object a text. Kept here with a measured reason: on 5,000 validated
examples of the 10x pool (~360 words) datasketch's MinHash.generator took 190 us a text over the shingle hashes,
these 11 us, with the same bits (tests/unit/test_curate_neardup.py checks them against datasketch); a text costs
~155 us in all, most of it `words` and the word hashes.
"""

from __future__ import annotations

import hashlib
import mmap
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lessismore.curate.decontam import words
from lessismore.errors import BadValue
from lessismore.records import Example

SEED = 1  # MinHash permutation seed: fixed, so signatures never change between runs
SCHEME = "affine32"  # datasketch's permutation scheme (32-bit values): named, so stored values rebuild the same sketch
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier for the rolling shingle hash (wraps mod 2**64)
_LOW32 = np.uint64(0xFFFFFFFF)
# LSH bands tuned for recall: every candidate is checked with the MinHash estimate anyway, so a false candidate
# costs one comparison while a missed one is a kept duplicate. At threshold 0.8 and 128 permutations datasketch
# then picks 16 bands of 8 rows: a pair of true Jaccard 0.85 becomes a candidate with p = 0.99 (0.69 with the
# default equal weights, which missed 7% of planted pairs at Jaccard 0.9).
_LSH_WEIGHTS = (0.05, 0.95)  # (false positive, false negative) weights for datasketch's band optimiser


def _word_hashes(tokens: list[str]) -> np.ndarray:
    """The 64-bit hash of each word: blake2b (8 bytes, little-endian) of its UTF-8, each distinct word hashed once
    (pyarrow's dictionary encoding finds them)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not tokens:
        return np.zeros(0, dtype=np.uint64)
    encoded = pc.dictionary_encode(pa.array(tokens, pa.string()))
    digests = (hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest() for w in encoded.dictionary.to_pylist())
    return np.frombuffer(b"".join(digests), dtype="<u8").astype(np.uint64)[encoded.indices.to_numpy()]


def shingle_batch(texts: list[str], shingle: int) -> tuple[np.ndarray, np.ndarray]:
    """Every text's shingle hashes (`shingle_hashes`), concatenated in order, and where each text's begin: a text
    of w >= shingle words has w - shingle + 1 shingles, a shorter one one (its words rolled whole; the empty text's
    is 0)."""
    return _shingles([words(text) for text in texts], shingle)


def _shingles(split: list[list[str]], shingle: int) -> tuple[np.ndarray, np.ndarray]:
    """`shingle_batch` of texts already split into `decontam.words`. The rolling hash runs once over the batch's
    words; windows that cross two texts are never taken."""
    sizes = np.array([len(w) for w in split], dtype=np.int64)
    vec = _word_hashes([w for ws in split for w in ws])
    first_word = np.cumsum(sizes) - sizes
    counts = np.maximum(sizes - shingle + 1, 1)
    starts = np.cumsum(counts) - counts
    out = np.zeros(int(counts.sum()), dtype=np.uint64)
    m = max(len(vec) - shingle + 1, 0)  # windows of `shingle` words over the whole batch
    rolled = vec[:m].copy()
    for k in range(1, shingle):
        rolled = rolled * _MIX + vec[k : k + m]
    long = sizes >= shingle
    step = np.arange(int(counts[long].sum())) - np.repeat(np.cumsum(counts[long]) - counts[long], counts[long])
    out[np.repeat(starts[long], counts[long]) + step] = rolled[np.repeat(first_word[long], counts[long]) + step]
    short = np.flatnonzero((sizes > 0) & ~long)  # fewer words than a shingle: all of them rolled into one
    value = vec[first_word[short]]
    for k in range(1, shingle):
        more = sizes[short] > k
        value[more] = value[more] * _MIX + vec[first_word[short][more] + k]
    out[starts[short]] = value
    return out, starts


def shingle_hashes(text: str, shingle: int) -> np.ndarray:
    """64-bit hashes of the text's word shingles, in order (repeats kept): the set MinHash summarises.

    >>> a = shingle_hashes("The cat sat on the mat.", 3)
    >>> len(a), bool((a == shingle_hashes("the CAT sat -- on the mat", 3)).all())
    (4, True)
    >>> len(shingle_hashes("one", 3)), len(shingle_hashes("", 3))
    (1, 1)
    """
    return shingle_batch([text], shingle)[0]


def minhash_text(example: Example) -> str:
    """The text whose shingles make an example's signature: its prompt and response."""
    return f"{example.prompt}\n{example.response}"


def minhash_words(example: Example, split: list[list[str]]) -> list[str]:
    """`words(minhash_text(example))` from its messages' words (`split`, one list a message, as decontamination
    computed them): the words of its prompt, then of its response. Equal, because `words` never joins across the
    line break between them."""
    roles = [m.role for m in example.messages]
    prompt = split[roles.index("user")] if "user" in roles else []
    response = split[len(roles) - 1 - roles[::-1].index("assistant")] if "assistant" in roles else []
    return prompt + response


def _to32(hashes: np.ndarray) -> np.ndarray:
    """Fold to the 32 bits MinHash's affine32 scheme takes."""
    return ((hashes >> np.uint64(32)) ^ (hashes & _LOW32)).astype(np.uint32)


def _premix(h: np.ndarray) -> np.ndarray:
    """The MurmurHash3 32-bit finalizer, as datasketch's affine32 scheme applies it to each input hash once."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutations for SEED: (a, b), num_perm uint32 each (a odd)."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=SEED, hashfunc=int, scheme=SCHEME).permutations
    return a.astype(np.uint32), b.astype(np.uint32)


def signatures(texts: list[str], shingle: int, num_perm: int) -> np.ndarray:
    """(len(texts), num_perm) uint32: each text's MinHash hash values, the bits of datasketch's
    MinHash(num_perm, seed=SEED, scheme="affine32") updated with the text's folded shingle hashes. Row-wise (a
    text's signature depends on the text alone), so it runs in batches on any engine and gives the same bits."""
    return word_signatures([words(text) for text in texts], shingle, num_perm)


def word_signatures(split: list[list[str]], shingle: int, num_perm: int) -> np.ndarray:
    """`signatures` of texts already split into `decontam.words` (curate's prescreen has them from decontamination:
    `minhash_words`), one row a word list."""
    if shingle < 1:
        raise BadValue(f"curate.near_dup.shingle must be >= 1 word, got {shingle}")
    out = np.empty((len(split), num_perm), dtype=np.uint32)
    if not split:
        return out
    flat, starts = _shingles(split, shingle)  # each text has >= 1 shingle
    hashes = _premix(_to32(flat))
    scratch = np.empty_like(hashes)
    for k, (a, b) in enumerate(zip(*permutations(num_perm), strict=True)):  # a * h + b wraps mod 2**32: uint32
        np.multiply(hashes, a, out=scratch)
        np.add(scratch, b, out=scratch)
        out[:, k] = np.minimum.reduceat(scratch, starts)
    return out


def signature_batch(table: Any, *, shingle: int, num_perm: int) -> Any:
    """`signatures` as a batch function (engine.map_batches): column "text" -> column "minhash" (num_perm uint32)."""
    import pyarrow as pa

    sigs = signatures(table.column("text").to_pylist(), shingle, num_perm)
    return pa.table({"minhash": pa.FixedSizeListArray.from_arrays(pa.array(sigs.ravel(), pa.uint32()), num_perm)})


Sign = Callable[[list[str]], np.ndarray]  # texts -> (n, num_perm) uint32 MinHash values (`signatures`, or on Ray)


def bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) of the LSH at `threshold`: datasketch's optimiser, weighted for recall (_LSH_WEIGHTS)."""
    from datasketch import MinHashLSH

    if not 0 < threshold <= 1 or num_perm < 2:
        raise BadValue(f"near_dup: threshold must be in (0, 1] and num_perm >= 2, got {threshold}, {num_perm}")
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=_LSH_WEIGHTS)
    return lsh.b, lsh.r


def _band_buckets(values: np.ndarray, band: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One band's buckets of two or more rows: (order, starts, sizes), `order` the row indices sorted by bucket
    (rows in input order inside each), bucket k being order[starts[k] : starts[k] + sizes[k]]. Rows share a bucket
    when their `rows` values in this band are all equal (grouped by a 64-bit hash of them; a hash collision only
    adds a candidate that the Jaccard check then rejects)."""
    h = np.empty(len(values), dtype=np.uint64)
    cols = slice(band * rows, (band + 1) * rows)
    for s in range(0, len(values), _ROWS):  # a block of rows at a time: their pages of a memory map let go after
        part = np.zeros(min(_ROWS, len(values) - s), dtype=np.uint64)
        for col in values[s : s + _ROWS, cols].T:
            part = (part ^ col.astype(np.uint64)) * _MIX
        h[s : s + _ROWS] = part
        let_go(values)
    order = np.argsort(h, kind="stable")  # stable: equal hashes stay in row order
    starts = np.flatnonzero(np.r_[True, h[order][1:] != h[order][:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    return order, starts[sizes > 1], sizes[sizes > 1]


def _similarity(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard of rows a[k] and b[k] (the share of equal MinHash values, as MinHash.jaccard), in chunks."""
    out = np.empty(len(a), dtype=np.float64)
    for s in range(0, len(a), _CHUNK):
        out[s : s + _CHUNK] = (values[a[s : s + _CHUNK]] == values[b[s : s + _CHUNK]]).mean(axis=1)
        let_go(values)
    return out


def let_go(values: np.ndarray) -> None:
    """Where `values` is a view of a memory map (the spill's signatures), unmap the pages read so far: the file
    stays in the OS's page cache, and the next read maps a page again from there. A resident page of a map counts
    in the process's memory (RSS) as long as it is mapped, and grouping reads every page: at 50x the pool (819,335
    signatures, 420 MB) curate's peak RSS went from 1,390 to 1,222 MiB with this (curate_scale.py). A plain array:
    nothing to do."""
    base = values
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is not None:
        base.madvise(mmap.MADV_DONTNEED)


_ROWS = 1 << 16  # rows hashed at once for a band's buckets: 65,536 x 128 values x 4 bytes = 32 MB of pages
_CHUNK = 8192  # pairs compared at once: 8,192 x 128 values x 4 bytes x 2 = 8 MB
_PAIRS = 1 << 20  # pairs of a bucket's misses listed at once (indices and similarities: ~30 MB)
_EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))


def _band_edges(values: np.ndarray, band: int, rows: int, threshold: float) -> tuple[np.ndarray, ...]:
    """Edges (i < j, similarity >= threshold) inside one band's buckets, enough to connect each bucket exactly as
    all its pairs would: every member against the bucket's first (all buckets at once), then each member that did
    not match its first against every other member (a pair of two members that both matched the first would join
    nothing new), listed in chunks of pairs rather than a Python loop a member (which also scanned every bucket's
    members once a bucket: 5.7 against 0.8 s on 200,000 synthetic signatures with copies at 90, 60 and 30% of their
    values, the same groups)."""
    order, starts, sizes = _band_buckets(values, band, rows)
    if not len(starts):
        return _EMPTY
    bucket = np.repeat(np.arange(len(starts)), sizes - 1)  # each member but the first: its bucket
    rank = np.arange(len(bucket)) - np.repeat(np.cumsum(sizes - 1) - (sizes - 1), sizes - 1)  # 0, 1.. in bucket
    pos = starts[bucket] + 1 + rank  # its place in `order`
    first, member = order[starts[bucket]], order[pos]
    sim = _similarity(values, first, member)
    hit = sim >= threshold
    edges = [(first[hit], member[hit], sim[hit])]
    miss, miss_bucket = member[~hit], bucket[~hit]  # each against every member of its bucket, a chunk of pairs at once
    pairs = sizes[miss_bucket]
    ends = np.cumsum(pairs)
    at = 0
    while at < len(miss):
        stop = max(at + 1, int(np.searchsorted(ends, (ends[at - 1] if at else 0) + _PAIRS, side="right")))
        n = pairs[at:stop]
        left = np.repeat(miss[at:stop], n)
        step = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        right = order[np.repeat(starts[miss_bucket[at:stop]], n) + step]
        sim_lr = _similarity(values, left, right)
        ok = (sim_lr >= threshold) & (left != right)
        edges.append((np.minimum(left[ok], right[ok]), np.maximum(left[ok], right[ok]), sim_lr[ok]))
        at = stop
    return tuple(np.concatenate(x) for x in zip(*edges, strict=True))


def similar_pairs(values: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges (i < j, estimated Jaccard) >= threshold between rows of `values` ((n, num_perm) MinHash values) that
    share a band bucket: enough edges that their connected components are those of every such pair."""
    b, r = bands(threshold, values.shape[1])
    values = np.asarray(values)  # a plain view of a memory map: no memmap wrapper around each slice taken below
    parts = [_band_edges(values, band, r, threshold) for band in range(b)]
    i, j, s = (np.concatenate(x) for x in zip(*parts, strict=True))
    _, first = np.unique(i * len(values) + j, return_index=True)  # one edge a pair, met in however many bands
    return i[first], j[first], s[first]


@dataclass(frozen=True)
class Groups:
    """Near-duplicate groups over n rows: `root[k]` is the earliest row of row k's group (k itself when k is kept);
    `link[k]` the row k is most similar to (its neighbour in the group, -1 alone) and `similarity[k]` that estimate."""

    root: np.ndarray
    link: np.ndarray
    similarity: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        return self.root == np.arange(len(self.root))


def group(values: np.ndarray, threshold: float) -> Groups:
    """Union-find over the similar pairs (scipy's connected components): every group keeps its earliest row."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(values)
    i, j, s = similar_pairs(values, threshold) if n else _EMPTY
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    first = np.full(labels.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    link, similarity = np.full(n, -1, dtype=np.int64), np.zeros(n)
    node, other, sim = np.r_[i, j], np.r_[j, i], np.r_[s, s]
    best = np.lexsort((other, -sim, node))  # per node: the most similar neighbour, the earliest on a tie
    node, other, sim = node[best], other[best], sim[best]
    head = np.r_[True, node[1:] != node[:-1]] if len(node) else np.zeros(0, bool)
    link[node[head]], similarity[node[head]] = other[head], sim[head]
    return Groups(first[labels], link, similarity)


def near_duplicates(
    examples: list[Example], *, threshold: float, shingle: int, num_perm: int, sign: Sign | None = None
) -> tuple[list[Example], list[tuple[Example, str]]]:
    """Keep the earliest of each group of near-duplicates, in input order; (kept, [(ex, "near_duplicate:<id>")]),
    the id being the kept one of its group. For lists in memory (curate itself streams: see curate/__init__.py)."""
    texts = [minhash_text(ex) for ex in examples]
    bands(threshold, num_perm)  # the params are checked even for no examples
    values = sign(texts) if sign is not None else signatures(texts, shingle, num_perm)
    groups = group(values, threshold)
    kept = [ex for ex, k in zip(examples, groups.kept, strict=True) if k]
    dropped = [
        (ex, f"near_duplicate:{examples[r].id}")
        for ex, r, k in zip(examples, groups.root, groups.kept, strict=True)
        if not k
    ]
    return kept, dropped


def _exact_pairs(sets: list[np.ndarray], threshold: float) -> set[tuple[int, int]]:
    """Pairs (i < j) whose shingle sets have Jaccard >= threshold, from a sparse product of incidence rows."""
    from scipy.sparse import csr_matrix, triu

    if not sets:
        return set()
    cols, inverse = np.unique(np.concatenate(sets), return_inverse=True)
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    x = csr_matrix((np.ones(len(rows), dtype=np.int64), (rows, inverse)), shape=(len(sets), len(cols)))
    inter = triu(x @ x.T, k=1).tocoo()
    sizes = np.array([len(s) for s in sets])
    jac = inter.data / (sizes[inter.row] + sizes[inter.col] - inter.data)
    return {(int(i), int(j)) for i, j, v in zip(inter.row, inter.col, jac, strict=True) if v >= threshold}


def near_dup_quality(
    examples: list[Example], *, threshold: float, shingle: int, num_perm: int, sample: int, seed: int
) -> dict[str, Any]:
    """Pairwise precision and recall of the MinHash LSH decision against exact Jaccard, on a seeded sample.

    The sample is drawn from the examples in id order, so it does not depend on the input order. A pair is flagged
    when LSH makes it a candidate and its estimated Jaccard is >= threshold (the rule near_duplicates applies);
    precision / recall are None when there is no flagged / no exact pair to divide by.
    """
    pool = sorted(examples, key=lambda e: e.id)
    chosen = random.Random(seed).sample(pool, min(sample, len(pool)))
    flat, starts = shingle_batch([minhash_text(ex) for ex in chosen], shingle)
    sets = [np.unique(part) for part in np.split(flat, starts[1:])]
    exact = _exact_pairs(sets, threshold)
    values = signatures([minhash_text(ex) for ex in chosen], shingle, num_perm)
    b, r = bands(threshold, num_perm)
    flagged = set()
    for order, starts, sizes in (_band_buckets(values, band, r) for band in range(b)):
        for start, size in zip(starts, sizes, strict=True):  # every pair of every bucket: a sample is small
            run = order[start : start + size]
            a, c = (run[x] for x in np.triu_indices(size, k=1))
            ok = _similarity(values, a, c) >= threshold
            flagged |= set(zip(a[ok].tolist(), c[ok].tolist(), strict=True))
    hits = len(exact & flagged)
    return {
        "sample": len(chosen),
        "pairs_exact": len(exact),
        "pairs_lsh": len(flagged),
        "true_positives": hits,
        "precision": hits / len(flagged) if flagged else None,
        "recall": hits / len(exact) if exact else None,
    }
