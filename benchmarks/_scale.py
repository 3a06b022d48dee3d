"""Shared by the scale benchmarks (ingest_scale.py, curate_scale.py) and curate_pool.py: the public pool's sources,
N perturbed copies of each in its own published format, a temp project's params.yaml, and a stage run in its own
process with its peak RSS.

The pool (../shared/data/pool, see its SOURCES.md) is read, never copied into the repo: the copies go to a temp dir.
Copy 0 is the file as published; copy k >= 1 renumbers the file's own ids by k * offset (Stack Exchange Id,
ParentId, AcceptedAnswerId, so answers still join; WritingPrompts row_id) and replaces a few of its words with
words of the same file, drawn from numpy's Generator seeded by (seed, k). A replaced word changes the up to 5
five-word shingles over it: at `rate` replacements a word a long text stays a near-duplicate of its original
(Jaccard ~ (1 - 5r) / (1 + 5r), 0.9 at 1%) while a short one falls below 0.8. The field a prompt is made of (SE
Title, wikiHow title, WritingPrompts prompt, Alpaca instruction) always gets one, so exact prompt dedup does not
collapse the copies; drawn from thousands of words, two copies almost never make the same edit, so none share a
content id (typos, tried first, gave a short title a few dozen variants: at N = 10, 7% of the rows were copies
of another copy, which validate quarantines as duplicate ids). Formats whose reader holds one file whole (a JSON
list is one document; wikiHow gathers an article's rows across the file) get one file per copy, as such corpora are
published in parts; the streaming ones (Posts.xml, WritingPrompts CSV) get one file holding every copy.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_POOL = REPO.parent / "shared/data/pool"
SE = "stackexchange/{}/Posts.xml"
# (name, format, path under the pool, split, quota): LIMA's mix (200 STEM, 200 other, 200 wikiHow, 150 Reddit,
# 50 from an instruction dataset), the rest of the budget unspent: the pool has no hand-written set
POOL = [
    ("se_stem", "stackexchange_xml", SE.format("{ai,quantumcomputing}.stackexchange.com"), "train", 200),
    ("se_other", "stackexchange_xml", SE.format("{beer,coffee}.stackexchange.com"), "train", 200),
    ("wikihow_steps", "wikihow_csv", "wikihow/wikihow_articles_steps.csv", "train", 100),
    ("wikihow_lists", "wikihow_csv", "wikihow/wikihow_list_summaries.csv", "train", 100),
    ("writingprompts", "writingprompts_csv", "writingprompts/writing_prompts_train_subset.csv", "train", 150),
    ("alpaca", "alpaca_json", "alpaca_subset/alpaca_5000.json", "train", 50),
    ("test_prompts", "writingprompts_csv", "writingprompts/writing_prompts_test_subset.csv", "test", 0),
]
LICENSE = "see the pool's SOURCES.md"
RATE = 0.01  # words replaced a word: Jaccard ~0.9 on 5-word shingles for a long text; with the prompt's one
# replacement a text under ~50 words falls below 0.8
_WORD = re.compile(r"(?<!\S)[A-Za-z]{4,}(?!\S)")  # a bare word between spaces: never inside an entity or a tag
_KEEP = {"steps", "with", "pictures", "wikihow", "ways"}  # wikiHow title boilerplate the prompt rewrite cuts


def pool_dir(path: str, script: str) -> Path:
    """The pool folder a benchmark was given, or exit naming the flag when its Stack Exchange dumps are not there."""
    pool = Path(path)
    if not any(pool.glob("stackexchange/*/Posts.xml")):
        sys.exit(f"{script}: no {pool}/stackexchange/*/Posts.xml; pass --pool <dir> (the shared public data pool)")
    return pool


def expand(pool: Path, rel: str) -> list[Path]:
    """ "a/{x,y}/f" -> [pool/a/x/f, pool/a/y/f] (a brace list of sites; a plain path is itself)."""
    if "{" not in rel:
        return [pool / rel]
    head, rest = rel.split("{", 1)
    alts, tail = rest.split("}", 1)
    return [pool / f"{head}{alt}{tail}" for alt in alts.split(",")]


# ----------------------------------------------------------------------------------------------------------------
# perturbation


def vocabulary(texts: Iterable[str]) -> tuple[str, ...]:
    """The bare words of a file's texts, sorted: what a replaced word is drawn from (the file's own words, so a copy
    reads like the source, and thousands of them, so two copies almost never make the same edit)."""
    return tuple(sorted({w for text in texts for w in _WORD.findall(text) if w.lower() not in _KEEP}))


def perturb(text: str, rng: np.random.Generator, rate: float, vocab: tuple[str, ...], at_least: int = 0) -> str:
    """`text` with Binomial(words, rate) of its bare words (at least `at_least`) replaced by words of `vocab`."""
    spans = [m.span() for m in _WORD.finditer(text) if m.group().lower() not in _KEEP]
    n = min(len(spans), max(at_least, int(rng.binomial(len(spans), rate)) if spans else 0))
    if n == 0:  # no word to replace: a prompt gets one more word, so it is still new
        return f"{text} {vocab[int(rng.integers(len(vocab)))]}" if at_least else text
    out, last = [], 0
    for a, b in sorted(spans[i] for i in rng.choice(len(spans), size=n, replace=False)):
        j = int(rng.integers(len(vocab)))
        word = vocab[j] if vocab[j] != text[a:b] else vocab[(j + 1) % len(vocab)]  # a replacement, never itself
        out += [text[last:a], word]
        last = b
    return "".join([*out, text[last:]])


def _offset(ids: Iterator[int]) -> int:
    """A power of ten above every id, so copy k's ids (id + k * offset) never meet another copy's."""
    return 10 ** len(str(max(ids, default=0)))


# ----------------------------------------------------------------------------------------------------------------
# one builder per format: (source file, copy k, seed, rate) -> that copy's content, valid in the format

_ID = re.compile(r'\b(Id|ParentId|AcceptedAnswerId)="(\d+)"')
_TEXT = re.compile(r'\b(Title|Body)="([^"]*)"')  # attribute values are XML-escaped: no raw quote inside


def se_rows(src: Path) -> list[str]:
    lines = src.read_text(encoding="utf-8-sig").splitlines()
    return [line for line in lines if line.lstrip().startswith("<row ")]


def se_copy(rows: list[str], k: int, offset: int, rng: np.random.Generator, rate: float) -> Iterator[str]:
    """Copy k of a Posts.xml's rows: ids moved by k * offset, Title (one word at least) and Body perturbed."""
    vocab = vocabulary(m.group(2) for line in rows for m in _TEXT.finditer(line)) if k else ()
    for line in rows:
        if not k:
            yield line
            continue
        line = _ID.sub(lambda m: f'{m.group(1)}="{int(m.group(2)) + k * offset}"', line)
        yield _TEXT.sub(lambda m: f'{m.group(1)}="{_field(m, rng, rate, vocab)}"', line)


def _field(m: re.Match, rng: np.random.Generator, rate: float, vocab: tuple[str, ...]) -> str:
    return perturb(m.group(2), rng, rate, vocab, at_least=int(m.group(1) == "Title"))


def scale_dump(src: Path, dst: Path, copies: int, *, seed: int = 0, rate: float = RATE) -> int:
    """`src` Posts.xml written to `dst` with its rows `copies` times (copy 0 as is); returns rows written."""
    rows = se_rows(src)
    offset = _offset(int(m.group(2)) for line in rows for m in _ID.finditer(line))
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", encoding="utf-8") as fh:
        fh.write('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
        for k in range(copies):
            fh.writelines(f"{line}\n" for line in se_copy(rows, k, offset, np.random.default_rng([seed, k]), rate))
        fh.write("</posts>\n")
    return len(rows) * copies


# the CSV formats: (the column holding the file's own row id, the column a prompt is made of, the text columns)
CSV_COLUMNS = {
    "writingprompts_csv": ("row_id", "prompt", ("prompt", "story")),
    "wikihow_csv": ("", "title", ("title", "heading", "paragraph", "result")),
}


def csv_copy(rows: list[list[str]], fmt: str, k: int, rng: np.random.Generator, rate: float) -> list[list[str]]:
    """Copy k of a CSV's rows (the header first, kept): row ids moved, the text columns perturbed. A key value
    (a wikiHow title, shared by its article's rows) gets the same edit in every row of the copy."""
    if not k:
        return rows
    header, body = rows[0], rows[1:]
    names = [h.strip().lower() for h in header]
    id_col, key_col, text_cols = CSV_COLUMNS[fmt]
    rid = names.index(id_col) if id_col in names else -1
    offset = _offset(int(r[rid]) for r in body if r[rid].isdigit()) if rid >= 0 else 0
    texts = [i for i, name in enumerate(names) if name in text_cols]
    vocab = vocabulary(r[i] for r in body for i in texts)
    keys: dict[str, str] = {}
    out = [header]
    for row in body:
        row = list(row)
        for i in texts:
            if names[i] == key_col:
                if row[i] not in keys:
                    keys[row[i]] = _key(row[i], fmt, rng, rate, vocab)
                row[i] = keys[row[i]]
            else:
                row[i] = perturb(row[i], rng, rate, vocab)
        if rid >= 0 and row[rid].isdigit():
            row[rid] = str(int(row[rid]) + k * offset)
        out.append(row)
    return out


def _key(value: str, fmt: str, rng: np.random.Generator, rate: float, vocab: tuple[str, ...]) -> str:
    """A prompt's field, one word at least replaced; in a wikiHow title, before the colon: the prompt rewrite
    (sources.wikihow.title_to_prompt) cuts the subtitle after it, and an edit there would leave the prompt as is."""
    head, colon, tail = value.partition(":") if fmt == "wikihow_csv" else (value, "", "")
    return perturb(head, rng, rate, vocab, at_least=1) + colon + tail


def read_csv(src: Path) -> list[list[str]]:
    with src.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh, strict=True))


def csv_lines(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)  # quotes what needs it: commas, quotes, newlines
    return buf.getvalue()


def alpaca_copy(items: list[dict], k: int, rng: np.random.Generator, rate: float) -> list[dict]:
    """Copy k of an Alpaca list: instruction (one word at least), input and output perturbed."""
    if not k:
        return items
    vocab = vocabulary(v for item in items for v in item.values() if isinstance(v, str))
    return [
        {
            key: perturb(v, rng, rate, vocab, at_least=int(key == "instruction")) if isinstance(v, str) else v
            for key, v in item.items()
        }
        for item in items
    ]


# ----------------------------------------------------------------------------------------------------------------
# a pool source N times over: where the copies go, and the params entry that reads them

ONE_FILE_EACH = {"alpaca_json", "wikihow_csv"}  # readers that hold a file whole: a file per copy


def scale_source(files: list[Path], fmt: str, dst: Path, copies: int, *, seed: int, rate: float = RATE) -> int:
    """Every file of one source, `copies` times, under `dst`; returns the source rows written (XML rows, CSV
    rows, JSON items). Each file's copies draw from their own seeded streams, so its bytes depend on it alone."""
    written = 0
    for j, src in enumerate(files):
        file_seed = _seeds(seed, j)
        if fmt == "stackexchange_xml":  # one folder a site: the reader names the site after it
            written += scale_dump(src, dst / src.parent.name / src.name, copies, seed=file_seed, rate=rate)
        elif fmt == "alpaca_json":
            written += _scale_alpaca(src, dst, copies, file_seed, rate)
        else:
            written += _scale_csv(src, fmt, dst, copies, file_seed, rate)
    return written


def _scale_alpaca(src: Path, dst: Path, copies: int, seed: int, rate: float) -> int:
    items = json.loads(src.read_text(encoding="utf-8-sig"))
    dst.mkdir(parents=True, exist_ok=True)
    for k in range(copies):
        out = alpaca_copy(items, k, np.random.default_rng([seed, k]), rate)
        (dst / f"{src.stem}.{k:03d}.json").write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return len(items) * copies


def _scale_csv(src: Path, fmt: str, dst: Path, copies: int, seed: int, rate: float) -> int:
    """One file per copy for a reader that holds a file (wikiHow), else every copy in one file, one at a time."""
    rows = read_csv(src)
    dst.mkdir(parents=True, exist_ok=True)
    one = None if fmt in ONE_FILE_EACH else (dst / src.name).open("w", encoding="utf-8")
    for k in range(copies):
        part = csv_copy(rows, fmt, k, np.random.default_rng([seed, k]), rate)
        if one is None:
            (dst / f"{src.stem}.{k:03d}.csv").write_text(csv_lines(part), encoding="utf-8")
        else:
            one.write(csv_lines(part if k == 0 else part[1:]))  # the header once
    if one is not None:
        one.close()
    return (len(rows) - 1) * copies


def _seeds(seed: int, j: int) -> int:
    """A child seed for item j (a source, a file): numpy's SeedSequence takes the pair apart anyway."""
    return seed * 1000 + j


def source_glob(name: str, fmt: str) -> str:
    """The params path (relative to the project) that reads what scale_source wrote for source `name`."""
    return (
        f"{name}/*/Posts.xml"
        if fmt == "stackexchange_xml"
        else f"{name}/*.{'json' if fmt == 'alpaca_json' else 'csv'}"
    )


def scale_pool(
    pool: Path, root: Path, copies: int, *, seed: int = 0, rate: float = RATE, names: Iterable[str] | None = None
) -> tuple[list[dict], int]:
    """The pool's sources (those in `names`, or all) written `copies` times under `root`; the eval split once (it is
    the held-out set, not data to scale). Returns (params ingest.sources entries, source rows written)."""
    entries, rows = [], 0
    for i, (name, fmt, rel, split, quota) in enumerate(POOL):
        if names is not None and name not in names:
            continue
        n = copies if split == "train" else 1
        rows += scale_source(expand(pool, rel), fmt, root / name, n, seed=_seeds(seed, i), rate=rate)
        entry = {"name": name, "format": fmt, "path": source_glob(name, fmt), "split": split, "license": LICENSE}
        entries.append(entry | ({"quota": quota, "curated": False} if split == "train" else {}))
    return entries, rows


# ----------------------------------------------------------------------------------------------------------------
# the temp project and its stages


def write_params(root: Path, repo: Path, sources: list[dict], **sections: dict) -> None:
    """`repo`'s params.yaml in `root` with these ingest sources and each of `sections` merged over its section (a
    section `repo` lacks, e.g. `data` in a checkout from before the shards, is left out)."""
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    params["ingest"] = {"sources": sources}
    for key, values in sections.items():
        if key in params:
            params[key] = _merge(params[key], values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def run_stage(root: Path, repo: Path, name: str) -> tuple[float, float]:
    """`repo`'s stages/<name>.py run in `root` with `repo`/src first on PYTHONPATH, as DVC runs it: (seconds, peak
    RSS in MiB, from os.wait4: the process's own high-water mark, threads and all). Its log goes to <name>.log."""
    env = os.environ | {
        "PYTHONPATH": str(repo / "src"),
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    log_path = root / f"{name}.log"
    with log_path.open("w") as log:
        start = time.perf_counter()
        cmd = [sys.executable, str(repo / "stages" / f"{name}.py")]
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(
            f"{Path(sys.argv[0]).stem}: {repo}/stages/{name}.py failed in {root}:\n{log_path.read_text()[-4000:]}"
        )
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux
