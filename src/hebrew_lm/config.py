"""The typed-config machinery every stage's config uses: allowed ranges beside each field, the rule
for which fields name inputs, field docs read from the source, and YAML/flags -> dataclass coercion.

    hebrew-lm corpus build configs/tiny.yaml --min_words 3 --normalize.strip_niqqud false

Each stage's config is a dataclass in its own package (`hebrew_lm.corpus.config`, ...; the registry,
`hebrew_lm.stages`, names each); the docstring under each field is its `--help` text and its entry in
docs/config-reference.md. Presets (a YAML file of stage sections) are read by `hebrew_lm.presets`.
Paths are relative to the working directory.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import inspect
import re
import sys
import textwrap
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


# --------------------------------------------------------------------------------------------------
# Allowed ranges: declared beside each field, checked by one function


@dataclass(frozen=True)
class Interval:
    """An allowed range such as `[0, 1)` or `(0, inf)`: brackets include the bound, parentheses exclude it."""

    text: str
    low: float
    high: float
    low_open: bool
    high_open: bool

    @classmethod
    def parse(cls, text: str) -> Interval:
        m = re.fullmatch(r"([\[(])\s*([-\d.e+]+|-inf)\s*,\s*([-\d.e+]+|inf)\s*([\])])", text)
        if not m:
            raise ValueError(f"not an interval: {text!r}")  # our own typo: fails at import
        return cls(text, float(m.group(2)), float(m.group(3)), m.group(1) == "(", m.group(4) == ")")

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below


def bounded(interval: str, default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A numeric config field with its allowed range, e.g. `dropout: float = bounded("[0, 1)", 0.1)`; for a
    list, every item must lie in it. `check_ranges` enforces it; `--help` and the config reference show it."""
    return field(default=default, default_factory=default_factory, metadata={"range": Interval.parse(interval)})


def field_range(f: dataclasses.Field) -> Interval | None:
    return f.metadata.get("range")


def check_ranges(config: Any, where: str) -> None:
    """The one range check: every bounded field of `config` (each item of a list) lies in its interval,
    else a ValueError naming the field, the value and the allowed range."""
    for f in dataclasses.fields(config):
        interval = field_range(f)
        if interval is None:
            continue
        value = getattr(config, f.name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool) or not isinstance(item, (int, float)) or item != item or item not in interval:
                raise ValueError(f"{where}.{f.name} must lie in {interval.text}, got {value!r}")


# --------------------------------------------------------------------------------------------------
# Which fields name a stage's inputs: one rule, read by the ownership check


OUTPUT_FIELDS = frozenset({"output_dir", "cache_dir"})
INPUT_FIELDS = frozenset({"init_from", "models", "inputs", "path", "train", "dev", "test", "timings", "folders"})


def is_input_field(name: str) -> bool:
    """A field that names something a stage reads: `init_from`, `models`, `inputs` and every `*_inputs`, a task's
    `path`/`train`/`dev`/`test`, the report's `timings` and `folders`, and every `*_dir`/`*_dirs` but the
    stage's own output_dir and cache_dir."""
    return name in INPUT_FIELDS or name.endswith("_inputs") or (name.endswith(("_dir", "_dirs")) and name not in OUTPUT_FIELDS)


def input_paths(config: Any, prefix: str = "") -> list[tuple[str, Path]]:
    """(field, path) for every input a config names, nested specs included (a corpus input's path, a
    fine-tuning task's files); embedded sources are skipped and a glob stands for the folder it starts in."""
    found: list[tuple[str, Path]] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, dict):  # a mapping of names to folders (the report's `folders`)
            found += [(f"{prefix}{f.name}.{k}", Path(v)) for k, v in value.items()
                      if is_input_field(f.name) and isinstance(v, str) and v]
            continue
        for item in value if isinstance(value, list) else [value]:
            if dataclasses.is_dataclass(item):
                found += input_paths(item, f"{prefix}{f.name}.")
            elif isinstance(item, str) and item and is_input_field(f.name) and not item.startswith("embedded:"):
                fixed = re.split(r"[*?[]", item, maxsplit=1)[0]  # a glob: the folder its fixed part ends in
                folder = Path(fixed[: fixed.rfind("/") + 1] or ".")
                found.append((f"{prefix}{f.name}", Path(item) if fixed == item else folder))
    return found


# --------------------------------------------------------------------------------------------------
# Generic machinery: field docs, YAML -> dataclass with validation, flags -> overrides


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each dataclass field (the `--help` text of its flag), the class's
    own and its dataclass bases' (TrainingConfig's fields in every training stage)."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__[1:]):
        if dataclasses.is_dataclass(base):
            docs.update(field_docs(base))
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:]):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)):
            continue
        if isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
            docs[node.target.id] = " ".join(nxt.value.value.split())
        elif isinstance(nxt.value, ast.JoinedStr):  # an f-string: a list the code keeps, spelled out from it
            text = eval(compile(ast.Expression(nxt.value), cls.__module__, "eval"), vars(sys.modules[cls.__module__]))
            docs[node.target.id] = " ".join(text.split())
    return docs


def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, typing.List):
        return f"list of {_describe(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    if origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp` and convert the lossless cases (CLI strings, ints as floats)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[0])
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ValueError(f"{where}: {value!r} is not one of {', '.join(repr(a) for a in allowed)}")
        return value
    if origin in (list, typing.List):
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, (str, dict)) or not isinstance(value, (list, tuple)):
            value = [value]
        return [coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:  # a free mapping handed on to a library (rotary settings); a flag gives it as YAML
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value) if value.strip() else {}
            except yaml.YAMLError:
                pass
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping (e.g. '{{rope_theta: 1000000}}'), got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, str) and hasattr(tp, "from_str"):
            return tp.from_str(value)
        if isinstance(value, dict):
            return from_dict(tp, value, where)
        raise ValueError(f"{where}: expected {_describe(tp)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, Path)):
            return str(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{where}: expected a string, got {value!r}")
    return value


def from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    """Build dataclass `cls` from a mapping: unknown keys and wrong types are errors naming `where`."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping of {cls.__name__} fields, got {data!r}")
    hints = _type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(names)}"
            raise ValueError(f"{where}: unknown key '{key}'{hint}")
        kwargs[key] = coerce(value, hints[key], f"{where}.{key}")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init and f.name not in kwargs
        and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{where}: missing required key(s): {', '.join(missing)}")
    try:
        config = cls(**kwargs)
        check_ranges(config, where.rsplit(": ", 1)[-1])  # every config's ranges, whether its class checks them or not
        return config
    except ValueError as e:
        if str(e).startswith(where):
            raise
        raise ValueError(f"{where}: {e}") from None


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """data['a']['b'] = value for dotted = 'a.b', creating the mappings on the way."""
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"--{dotted}: '{part}' is not a section")
    node[last] = value


def flat_fields(cls: type, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted name, type, help) for every leaf field, descending into nested config dataclasses."""
    hints = _type_hints(cls)
    docs = field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(flat_fields(tp, f"{prefix}{f.name}."))
        else:
            interval = field_range(f)
            doc = docs.get(f.name, "") + (f" Range: {interval.text}." if interval else "")
            out.append((f"{prefix}{f.name}", tp, doc))
    return out
