"""benchmarks/_scale.py: the copies the scale benchmarks (ingest_scale, curate_scale) build from the pool. On tiny
fixtures written here (never the pool): each copy stays valid in its format and parses with the project's own
readers, ids are offset per copy, copies are new examples (not exact duplicates), and a seed fixes the bytes."""

from __future__ import annotations

import csv
import importlib.util
import json
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from lessismore.config import Source
from lessismore.records import Dropped, Example
from lessismore.sources import ingest_source

_spec = importlib.util.spec_from_file_location("_scale", Path(__file__).resolve().parents[2] / "benchmarks/_scale.py")
scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scale)

WORDS = "grind the beans coarsely before brewing because finer powder extracts bitter compounds quickly while water"
# ~165 words, 150 of them distinct: a copy's replacements are drawn from the file's own words (thousands in the pool)
BODY = " ".join([WORDS, *("".join(t) + "ing" for t in product("bcdfg", "aeiou", "lmnrst"))])


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def write_fixtures(root: Path) -> dict[str, Path]:
    """One small file in each published format the pool holds, with the characters each format must escape."""
    se = root / "src/coffee.stackexchange.com/Posts.xml"
    se.parent.mkdir(parents=True)
    q = _xml(f"<p>How coarse should beans be? {BODY} & more</p>")
    a = _xml(f'<p>Answer: {BODY} "quoted" <code>x < y</code></p>')
    se.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<posts>\n'
        f'  <row Id="7" PostTypeId="1" AcceptedAnswerId="9" Score="12" Title="Storing bean coffee" Body="{q}" />\n'
        f'  <row Id="9" PostTypeId="2" ParentId="7" Score="15" Body="{a}" />\n</posts>\n',
        encoding="utf-8",
    )
    wiki = root / "src/wikihow.csv"
    with wiki.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["title", "heading", "paragraph"])
        w.writerow(["How to Brew Strong Coffee: 5 Steps", "Grind beans.", f'{BODY}, with "quotes"'])
        w.writerow(["How to Brew Strong Coffee: 5 Steps", "Pour water.", f"{BODY}\nsecond line"])
    wp = root / "src/wp.csv"
    with wp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row_id", "prompt", "story", "completion"])
        w.writerow(["41", "[ WP ] A barista discovers time travel", f"{BODY}, she said.\n\n{BODY}", ""])
    alpaca = root / "src/alpaca.json"
    items = [{"instruction": "Explain brewing coffee properly", "input": "", "output": BODY}]
    alpaca.write_text(json.dumps(items + [{"instruction": "Summarise this text", "input": WORDS, "output": BODY}]))
    return {"stackexchange_xml": se, "wikihow_csv": wiki, "writingprompts_csv": wp, "alpaca_json": alpaca}


def read(root: Path, fmt: str) -> list:
    spec = Source("s", fmt, str(root / scale.source_glob("s", fmt)), "train", "x", quota=0, curated=False)
    return list(ingest_source(spec))


@pytest.mark.parametrize("fmt", ["stackexchange_xml", "wikihow_csv", "writingprompts_csv", "alpaca_json"])
def test_copies_parse_with_offset_ids_and_are_no_exact_duplicates(tmp_path, fmt):
    src = write_fixtures(tmp_path)[fmt]
    one, ten = tmp_path / "x1" / "s", tmp_path / "x10" / "s"
    scale.scale_source([src], fmt, one, 1, seed=5)
    scale.scale_source([src], fmt, ten, 10, seed=5)
    base, copies = read(one.parent, fmt), read(ten.parent, fmt)
    assert not [r for r in base + copies if isinstance(r, Dropped)]  # every copy valid in its format
    assert all(isinstance(r, Example) for r in copies) and len(copies) == 10 * len(base) > 0
    assert len({ex.id for ex in copies}) == len(copies)  # new content each, short titles too: validate keeps all
    assert len({ex.prompt for ex in copies}) == len(copies)  # exact prompt dedup does not collapse them
    assert {ex.id for ex in base} <= {ex.id for ex in copies}  # copy 0 is the file as published
    offset = {"stackexchange_xml": 10, "writingprompts_csv": 100}.get(fmt)  # a power of ten above the file's ids
    if offset:  # the formats that carry their own ids: SE's "<question Id>/<answer Id>", WritingPrompts' row_id
        ids = [[int(i) for i in ex.origin.row.split("/")] for ex in base + copies]
        assert sorted(ids[1:]) == [[i + k * offset for i in ids[0]] for k in range(10)]


@pytest.mark.parametrize("fmt", ["stackexchange_xml", "wikihow_csv", "writingprompts_csv", "alpaca_json"])
def test_the_seed_fixes_the_bytes(tmp_path, fmt):
    src = write_fixtures(tmp_path)[fmt]

    def build(name: str, seed: int) -> dict[str, bytes]:
        scale.scale_source([src], fmt, tmp_path / name, 3, seed=seed)
        return {
            str(p.relative_to(tmp_path / name)): p.read_bytes() for p in (tmp_path / name).rglob("*") if p.is_file()
        }

    assert build("a", 5) == build("b", 5) != build("c", 6)


def test_perturb_replaces_about_rate_of_the_words_and_keeps_markup():
    rng, vocab = np.random.default_rng(0), scale.vocabulary([WORDS])
    text = " ".join(["&lt;p&gt;coffee"] + ["water"] * 1000 + ["&amp;"])
    out = scale.perturb(text, rng, 0.02, vocab)
    changed = sum(a != b for a, b in zip(text.split(), out.split(), strict=True))
    assert 5 <= changed <= 40 and out.startswith("&lt;p&gt;coffee ") and out.endswith(" &amp;")
    assert scale.perturb("How to do it?", rng, 0.0, vocab, at_least=1) != "How to do it?"  # a prompt always changes
