"""Great Expectations suites built from the data contract (records.py), and the flat frames they run on.

Sits in validate/: `flat_frame` turns Examples or Prompts into one pandas row per record; `contract_expectations`
walks the record's dataclass fields (required str -> not null and not blank, Literal -> value set, a tuple of
dataclasses -> a JSON schema of its items), so a field added to the contract adds its checks here by itself.
`row_expectations` adds the content rules on derived columns (message lengths, role order, encoding, HTML
leftovers); `table_expectations` are the whole-table checks that fail the stage, on per-file counts. Every
expectation carries meta {"problem", "fix"}: the quarantine detail and the stage's error message are written from
them.
"""

from __future__ import annotations

import json
import re
import typing
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any, Literal

import orjson

from lessismore.text import prose

_COMPUTED = {"id"}  # defaults to "" but __post_init__ always fills it with the content hash: required
# an HTML tag left by a scrape: <p>, </div>, <br/>, <a href="..."> (quoted attributes only, so math such as
# "$x<a$ and $b>c$" is not mistaken for a tag)
_TAGS = "p|div|br|span|a|ul|ol|li|pre|code|blockquote|h[1-6]|strong|em|b|i|img|table|tr|td|th|script|style|iframe"
HTML_TAG = rf"""(?i)</?(?:{_TAGS})(?:\s+[\w-]+=(?:"[^"]*"|'[^']*'))*\s*/?>"""
# markup that runs when the text is shown as HTML: a script, style, iframe, object or embed element, a javascript:
# URL, an on...= event handler in a tag. In any format, outside code, in an answer to a prompt that did not ask for
# web code (_WEB_TOPIC): there it is an injection, not an answer. Alpaca's "Create a JavaScript program" answered
# with a <script> element asked for it, and keeps it. A handler may follow a slash as well as a space (browsers
# run <svg/onload=...>). Spelled so that every branch starts with a plain character ("<", j or J; the case folded
# after it, the word boundary before j looked back at): Python's re then skips to those, where a leading (?i) or \b
# tried every position: 1.9x faster than (?i)<(?:script|...)\b|\bjavascript:|<[a-z]..., the same matches on the
# 364k texts of the 10x pool (GX runs it on every answer)
ACTIVE_MARKUP = (
    r"<(?i:script|style|iframe|object|embed)\b|<(?i:[a-z][^>]*[\s/]on[a-z]+\s*=)|[jJ](?<!\w[jJ])(?i:avascript):"
)
_WEB_TOPIC = re.compile(
    r"(?i)\b(?:html|javascript|js|css|web ?pages?|web ?sites?|browsers?|scripts?|svg|xss|dom|front-?end|code)\b"
)
CONTROL_CHARS = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"  # NUL and the other C0 controls but tab and line breaks
# formats whose answers people or models wrote as text: HTML there is content, not what a scrape left behind
AUTHORED_FORMATS = ("alpaca_json", "lima_jsonl", "sharegpt_jsonl", "openai_jsonl")
BAD_CODEPOINTS = r"[\ufffd\ud800-\udfff]"  # U+FFFD: bytes that did not decode; lone surrogates: broken UTF-16
ROLE_ORDER = r"^(?:system,)?user(?:,assistant,user)*(?:,assistant)?$"  # alternating turns, an optional system first


@dataclass(frozen=True)
class Column:
    """One flat column of the contract: its dotted path (origin.source), its kind and whether it is required."""

    name: str
    kind: Literal["text", "enum", "items", "mapping", "value"]
    required: bool
    spec: Any = None  # enum: the allowed values; items: the JSON schema of one item


def _required(f: Any) -> bool:
    return f.name in _COMPUTED or (f.default is MISSING and f.default_factory is MISSING)


def json_schema(tp: Any) -> dict[str, Any]:
    """The JSON schema of a contract type: dataclass -> object, Literal -> enum, str -> string, tuple -> array.

    >>> json_schema(Literal["a", "b"])
    {'enum': ['a', 'b']}
    """
    if is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        props = {f.name: json_schema(hints[f.name]) for f in fields(tp)}
        required = [f.name for f in fields(tp) if _required(f)]
        for name in required:  # a required text must say something, not just exist
            if props[name] == {"type": "string"}:
                props[name] = {"type": "string", "pattern": r"\S"}
        return {"type": "object", "required": required, "properties": props, "additionalProperties": False}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return {"enum": list(args)}
    if origin is tuple:
        return {"type": "array", "minItems": 1, "items": json_schema(args[0])}
    if origin is dict:
        return {"type": "object"}
    return {"type": {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp, "string")}


def contract_columns(cls: type, prefix: str = "") -> list[Column]:
    """The flat columns of a record type: nested dataclasses become dotted columns (origin.source, ...)."""
    hints = typing.get_type_hints(cls)
    out: list[Column] = []
    for f in fields(cls):
        tp, name, required = hints[f.name], prefix + f.name, _required(f)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if is_dataclass(tp):
            out += contract_columns(tp, name + ".")
        elif origin is Literal:
            out.append(Column(name, "enum", required, list(args)))
        elif origin is tuple and args and is_dataclass(args[0]):
            out.append(Column(name, "items", required, json_schema(tp)))
        elif origin is dict:
            out.append(Column(name, "mapping", required))
        else:
            out.append(Column(name, "text" if tp is str else "value", required))
    return out


def _cell(value: Any, kind: str) -> Any:
    """A contract column's cell from the Arrow row: a tuple of dataclasses as the list of dicts the row holds (the
    schema check takes it as it is: turning it into JSON text for the check to parse it back was 8% of a validate
    worker's time on the 10x pool, py-spy), a free-form dict as its JSON text (sorted keys: what a Parquet shard
    holds already)."""
    if kind == "mapping" and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def derived_row(row: dict[str, Any]) -> dict[str, Any]:
    """The content columns the row expectations read, from a record's Arrow row (a dict): lengths in non-blank
    characters, body (all texts joined), prose (the assistant turns without code, in scraped formats; "" for a
    prompt or an authored format), active (the same in every format, "" when a user turn asks for web code), and
    for conversations the role sequence and the last role."""
    messages = row.get("messages")
    texts = [m["content"] for m in messages] if messages is not None else [row["text"]]
    chars = [len("".join(t.split())) for t in texts] or [0]
    out = {"chars_min": min(chars), "chars_max": max(chars), "body": "\n\n".join(texts)}
    # a scrape's leftover tags are looked for in the answers only: a question may be about HTML (LIMA's test prompt
    # lima-16 asks how to recolour a <span>), and an eval prompt is never dropped for its subject. In an authored
    # instruction set HTML in an answer is the answer (Alpaca: "Create an HTML page ..."), so only scraped formats
    # are checked
    meta = row.get("meta") or {}
    meta = orjson.loads(meta) if isinstance(meta, str) else meta
    scraped = meta.get("format") not in AUTHORED_FORMATS
    messages = messages or ()
    answers = prose("\n\n".join(m["content"] for m in messages if m["role"] == "assistant"))  # code may quote HTML
    out["prose"] = answers if scraped else ""
    asked_for_web = any(_WEB_TOPIC.search(m["content"]) for m in messages if m["role"] != "assistant")
    out["active"] = "" if asked_for_web else answers
    if "messages" in row:
        roles = [m["role"] for m in messages]
        out |= {"roles": ",".join(roles), "last_role": roles[-1] if roles else ""}
    return out


def derived_columns(cls: type) -> list[str]:
    """The names `derived_row` adds for records of type `cls` (role columns only for conversations)."""
    names = ["chars_min", "chars_max", "body", "prose", "active"]
    return names + (["roles", "last_role"] if any(f.name == "messages" for f in fields(cls)) else [])


def flat_frame(table: Any, cls: type) -> Any:
    """One pandas row per record of an Arrow table of `cls` (records.to_table, or a shard as read; index = row
    position): contract columns plus derived ones, from the rows as dicts. No record is built: Arrow -> dataclass
    -> dict cost ~50 us a row of a 5,000-row shard's ~250 (measured on the 10x pool)."""
    import pandas as pd

    columns = contract_columns(cls)
    paths = [(c.name, c.name.split("."), c.kind) for c in columns]
    rows = []
    for rec in table.to_pylist():
        row = {}
        for name, parts, kind in paths:
            value = rec
            for part in parts:
                value = value[part]
            row[name] = _cell(value, kind)
        rows.append(row | derived_row(rec))
    # object columns, not pandas 3's default Arrow-backed "str": converting a shard's texts to it took 0.35 s of a
    # 5,000-row shard of long answers (pandas' string_arrow._from_sequence; against 0.004), and GX's regex checks
    # run row by row in Python either way (the same outcomes on every shard of the 10x pool)
    frame = pd.DataFrame(rows, columns=[c.name for c in columns] + derived_columns(cls), dtype=object)
    return frame.astype(dict.fromkeys(_COUNTS, "int64"))


_COUNTS = ("chars_min", "chars_max")  # the integer columns of derived_row


# ----------------------------------------------------------------------------------------------------------------
# expectations: each carries meta {"problem", "fix"}; "{value}" in a problem is the offending cell


def _expect(kind: str, column: str, problem: str, fix: str, **kwargs: Any) -> Any:
    import great_expectations.expectations as gxe

    expectation = getattr(gxe, kind, None)
    if kind == "ExpectColumnValuesToMatchContractSchema":  # ours: GX's json-schema check, fast (schema_check.py)
        from lessismore.validate.schema_check import ExpectColumnValuesToMatchContractSchema as expectation
    return expectation(column=column, meta={"problem": problem, "fix": fix}, notes=fix, **kwargs)


def contract_expectations(cls: type) -> list[Any]:
    """One or two expectations per contract column of `cls`, chosen by the field's type (see module doc)."""
    fix = (
        f"fix this row in its source file, or the reader in lessismore.sources that filled it (records.{cls.__name__})"
    )
    out = []
    for col in contract_columns(cls):
        if col.required and col.kind != "mapping":
            out.append(_expect("ExpectColumnValuesToNotBeNull", col.name, f"{col.name} is missing", fix))
        if col.kind == "text" and col.required:
            out.append(_expect("ExpectColumnValuesToMatchRegex", col.name, f"{col.name} is blank", fix, regex=r"\S"))
        elif col.kind == "enum":
            problem = f"{col.name} is {{value}}, not one of {col.spec}"
            out.append(_expect("ExpectColumnValuesToBeInSet", col.name, problem, fix, value_set=col.spec))
        elif col.kind in ("items", "mapping"):
            schema = col.spec or {"type": "object"}
            problem = f"{col.name} does not match the contract's schema (blank text or unknown value?): {{value}}"
            out.append(_expect("ExpectColumnValuesToMatchContractSchema", col.name, problem, fix, json_schema=schema))
        elif not col.required:
            out.append(_expect("ExpectColumnToExist", col.name, f"no column {col.name}", fix))
    return out


def row_expectations(cls: type, min_chars: int, max_chars: int) -> list[Any]:
    """The content rules on derived columns: lengths (non-blank characters), encoding, control characters, HTML
    left by a scrape, markup that runs, role order."""
    src = "the source file"
    out = [
        _expect(
            "ExpectColumnValuesToBeBetween",
            "chars_min",
            f"a message has {{value}} non-blank characters, fewer than validate.min_chars = {min_chars}",
            f"write the missing text in {src} or delete the row there",
            min_value=min_chars,
        ),
        _expect(
            "ExpectColumnValuesToBeBetween",
            "chars_max",
            f"a message has {{value}} non-blank characters, more than validate.max_chars = {max_chars}",
            f"trim the runaway text in {src}, or raise validate.max_chars",
            max_value=max_chars,
        ),
        _expect(
            "ExpectColumnValuesToNotMatchRegex",
            "body",
            "the text has U+FFFD or a lone surrogate (bytes that did not decode as UTF-8): {value}",
            f"re-save {src} as UTF-8 (e.g. iconv -f cp1252 -t utf-8) and re-run ingest",
            regex=BAD_CODEPOINTS,
        ),
        _expect(  # a list of one: the reason code differs from the encoding rule's on the same column
            "ExpectColumnValuesToNotMatchRegexList",
            "body",
            "the text has a control character (NUL, escape...): {value}",
            f"delete it in {src}: it is not text, and it breaks tokenizers and files downstream",
            regex_list=[CONTROL_CHARS],
        ),
        _expect(
            "ExpectColumnValuesToNotMatchRegexList",
            "prose",
            "HTML tags left in an answer outside code: {value}",
            f"convert it to markdown in the source reader (lessismore.sources.html) or clean it in {src}",
            regex_list=[HTML_TAG],
        ),
        _expect(
            "ExpectColumnValuesToNotMatchRegex",
            "active",
            "markup that runs in a browser, in an answer to a prompt that did not ask for web code: {value}",
            f"delete the row in {src}: it is an injection, not an answer (put wanted code in a ``` block)",
            regex=ACTIVE_MARKUP,
        ),
    ]
    if "roles" in derived_columns(cls):
        out += [
            _expect(
                "ExpectColumnValuesToMatchRegex",
                "roles",
                "roles are {value}: turns must alternate user, assistant (an optional system first)",
                f"fix the order of the turns in {src}",
                regex=ROLE_ORDER,
            ),
            _expect(
                "ExpectColumnValuesToBeInSet",
                "last_role",
                "the conversation ends with a {value} turn",
                f"add the missing answer in {src}, or delete the dangling prompt",
                value_set=["assistant"],
            ),
        ]
    return out


def table_expectations(sources: list[str], max_share: float, rows: int) -> list[Any]:
    """Whole-table checks on the table frame, one row per source file with its counts (kept_source: the source when
    any of its rows was kept; row_checks_failed: how many failed a row check, of `rows` in all): these fail the
    stage. Ids are unique by construction (a repeated id is quarantined as it comes), so that is not a check."""
    return [
        _expect(
            "ExpectColumnDistinctValuesToContainSet",
            "kept_source",
            "declared sources with no valid rows",
            "check the source file exists and parses, or remove it from ingest.sources",
            value_set=sources,
        ),
        _expect(
            "ExpectColumnSumToBeBetween",
            "row_checks_failed",
            "too many rows failed the row checks",
            "fix the files named in the quarantine, or raise validate.max_quarantine_share",
            min_value=0,
            max_value=round(max_share * rows, 6),
        ),
    ]
