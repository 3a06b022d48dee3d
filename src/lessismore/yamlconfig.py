"""Typed YAML: read a YAML mapping, deep-merge overlays, and build frozen dataclasses from it, collecting every error.

The generic machinery under config.py (which holds lessismore's own params schema and its semantic checks): a
dataclass type is walked field by field, so a wrong key, a missing one or a wrong type each add one line naming the
dotted key and the fix, and all of them are raised together in one ConfigError.
The build always completes: a value that is wrong or missing becomes INVALID, so the semantic checks still run on
everything else (a negative budget is reported next to a type error, not after it is fixed). A check that touches
INVALID stops with `Unchecked` and is skipped: its input already has its own error line.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

from lessismore.errors import BadValue


class ConfigError(BadValue):
    """Every problem in a params file at once, one per line, each naming the key and the fix."""

    def __init__(self, path: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s)\n  - " + "\n  - ".join(problems))


class Unchecked(Exception):
    """A semantic check touched a value that failed to build; that value is already reported, so skip the check."""


class _Invalid:
    """Stands in for a value that failed to build: any use of it (compare, iterate, read a field) raises Unchecked."""

    def _stop(self, *args: Any, **kwargs: Any) -> Any:
        raise Unchecked

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _stop

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # introspection (doctest, copy, pickle) asks for dunders: not a check
            raise AttributeError(name)
        raise Unchecked

    __bool__ = __iter__ = __len__ = __contains__ = __getitem__ = __add__ = __sub__ = __mul__ = __neg__ = _stop

    def __repr__(self) -> str:
        return "<invalid>"


INVALID: Any = _Invalid()


# the builder: walks the dataclass types, collects every error


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, key: str, errs: list[str]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if is_dataclass(tp):
        return build(tp, value, key + ".", errs)
    if origin is Literal:
        if value not in args:
            near = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            errs.append(
                f"{key}: {value!r} is not one of {list(args)}" + (f"; did you mean {near[0]!r}?" if near else "")
            )
            return INVALID
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        # the first type the value fits; else the errors of the type of its shape (a mapping: the dataclass)
        shaped: list[str] = []
        for option in (a for a in args if a is not type(None)):
            tried: list[str] = []
            built = _coerce(option, value, key, tried)
            if not tried:
                return built
            if not shaped or is_dataclass(option) == isinstance(value, dict):
                shaped = tried
        errs += shaped
        return INVALID
    if origin is tuple:
        if not isinstance(value, list | tuple):
            errs.append(f"{key}: expected a list, got {type(value).__name__} {value!r}")
            return INVALID
        return tuple(_coerce(args[0], v, f"{key}[{i}]", errs) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            errs.append(f"{key}: expected a mapping, got {type(value).__name__} {value!r}")
            return INVALID
        out = {}
        for k, v in value.items():  # a Literal key type names the keys allowed
            name = str(k) if args[0] is str else _coerce(args[0], str(k), f"{key}.{k}", errs)
            if name is not INVALID:  # a refused key has its error line already
                out[name] = _coerce(args[1], v, f"{key}.{k}", errs)
        return out
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is Any or (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        return value
    hint = " (YAML reads 1e-5 as a string: write 1.0e-5)" if tp is float and isinstance(value, str) else ""
    errs.append(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}{hint}")
    return INVALID


def build(cls: type, data: Any, prefix: str, errs: list[str]) -> Any:
    """`data` as a `cls` instance; every problem appended to `errs`, and INVALID put where a value could not be made.

    A field whose default is None is a key that only applies when another key selects it (model.path for
    model.source local, ...): it may be left out. Every other field is required: params.yaml shows every value.
    """
    if not isinstance(data, dict):
        errs.append(f"{prefix.rstrip('.') or 'params'}: expected a mapping, got {type(data).__name__}")
        return INVALID
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            near = difflib.get_close_matches(str(key), list(known), n=1)
            fix = f"did you mean {near[0]!r}?" if near else f"known keys: {sorted(known)}"
            errs.append(f"{prefix}{key}: unknown key; {fix}")
    kwargs = {}
    for name, f in known.items():
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], f"{prefix}{name}", errs)
        elif f.default is MISSING and f.default_factory is MISSING:
            errs.append(f"{prefix}{name}: missing; add it (type {_type_name(hints[name])})")
            kwargs[name] = INVALID
    return cls(**kwargs)


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `overlay` onto `base`: mappings merge key by key; anything else, and an empty mapping, replaces.

    >>> merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}})
    {'a': {'x': 1, 'y': 3}, 'b': 1}
    >>> merge({"q": {"x": 1}}, {"q": {}})
    {'q': {}}
    """
    out = dict(base)
    for key, value in overlay.items():
        nested = isinstance(value, dict) and value and isinstance(out.get(key), dict)
        out[key] = merge(out[key], value) if nested else value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(str(path), [f"file not found; run from the repository root or pass the path ({Path.cwd()})"])
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["the top level must be a mapping of sections (base, ingest, ...)"])
    return data


def merge_into_file(path: str | Path, overlay: str | Path) -> None:
    """Deep-merge the YAML file `overlay` into the YAML file at `path` in place, as `merge` does, keeping the file's
    comments, key order, quoting and layout (ruamel.yaml's round trip); only the values the overlay sets change.

    Both files go through the round trip, so every value keeps the text it was written with (1.0e-5 stays 1.0e-5:
    a re-dumped float would be 1e-05, which YAML 1.1 readers such as PyYAML and DVC take for a string).
    """
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip mode: comments and formatting are part of the document
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=2, sequence=4, offset=2)  # params.yaml's layout: "  sources:\n    - name: ..."
    path = Path(path)
    document = yaml.load(path.read_text(encoding="utf-8"))
    _merge_in_place(document, yaml.load(Path(overlay).read_text(encoding="utf-8")) or {})
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(document, fh)


def _merge_in_place(target: Any, overlay: dict[str, Any]) -> None:
    for key, value in overlay.items():
        if isinstance(value, dict) and value and isinstance(target.get(key), dict):
            _merge_in_place(target[key], value)
        else:
            target[key] = value
