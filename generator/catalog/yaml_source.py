"""Read one YAML file into plain Python data plus a map of where every value came from.

libyaml (PyYAML's C composer) gives every node its line and column; they are copied into a flat
dict keyed by the value's path (``("settings", "kms", "rotation_days")``) and the rest of the
program gets plain dicts, lists and scalars, resolved by the YAML 1.2 core schema. Hostile input
is refused here, before anything else sees it: non-UTF-8 bytes, explicit tags, anchors and
aliases, duplicate or non-string keys, deep nesting, a document that is not one mapping.
Why libyaml and YAML 1.2: docs/architecture.md ("Reading YAML").
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from generator.errors import CatalogError, Location

KeyPath = tuple[str | int, ...]
MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 32

if TYPE_CHECKING:  # libyaml's CSafeLoader when present; both share SafeLoader's resolver API
    _BaseLoader = yaml.SafeLoader
else:
    _BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):
    """libyaml composer with YAML 1.2 core-schema implicit typing."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}  # noqa: RUF012 - PyYAML's own class-level table, filled below


for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+0123456789."),
    ("null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("timestamp", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "0123456789"),
):
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))
_Loader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^$"), [""])

_STR, _INT, _FLOAT, _BOOL, _NULL, _DATE = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp"))
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


@dataclass
class SourceDoc:
    """A parsed catalog file: its data and the 1-based (line, col) of every value and key."""

    path: str
    data: dict[str, Any]
    positions: Mapping[KeyPath, tuple[int, int]] = field(default_factory=dict)
    key_positions: Mapping[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, keypath: KeyPath, *, key: bool = False) -> Location:
        """Best location for ``keypath``: the value itself, else its nearest ancestor."""
        table = self.key_positions if key else self.positions
        probe = tuple(keypath)
        while probe:
            if probe in table:
                line, col = table[probe]
                return Location(self.path, line, col)
            probe = probe[:-1]
        return Location(self.path, 1, 1)


class _Mark(Protocol):
    """Where a node or event starts: PyYAML's and libyaml's marks (0-based)."""

    line: int
    column: int


class _Rejected(Exception):
    def __init__(self, mark: _Mark | None, message: str) -> None:
        self.line, self.col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        self.message = message


def parse_yaml(path: str, raw: bytes) -> tuple[SourceDoc | None, list[CatalogError]]:
    """Parse ``raw`` (the bytes of ``path``) into a :class:`SourceDoc`, or errors."""
    if len(raw) > MAX_FILE_BYTES:
        return None, [CatalogError(Location(path), f"file is larger than {MAX_FILE_BYTES} bytes")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        return None, [CatalogError(Location(path, line, col), "file is not valid UTF-8")]
    try:
        if "!" in text or "&" in text or "*" in text:
            _refuse_tags_and_aliases(text)
        node = yaml.compose(text, Loader=_Loader)
        if node is None:
            return None, [CatalogError(Location(path), "file is empty; expected a mapping")]
        if not isinstance(node, yaml.MappingNode):
            raise _Rejected(node.start_mark, "expected a mapping at the top of the file")
        positions: dict[KeyPath, tuple[int, int]] = {}
        key_positions: dict[KeyPath, tuple[int, int]] = {}
        data = _plain(node, (), _Marks(positions, key_positions), 0)
        return SourceDoc(path, data, positions, key_positions), []
    except _Rejected as exc:
        return None, [CatalogError(Location(path, exc.line, exc.col), exc.message)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        return None, [CatalogError(Location(path, line, col), f"YAML error: {problem}")]
    except yaml.YAMLError as exc:
        return None, [CatalogError(Location(path), f"YAML error: {exc}")]


def _refuse_tags_and_aliases(text: str) -> None:
    """Scan parser events (libyaml, cheap) for explicit tags, anchors and aliases: the
    composed graph no longer says whether a tag was written or inferred."""
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Rejected(event.start_mark, "YAML anchors and aliases are not allowed in the catalog")
        tag = getattr(event, "tag", None)
        if tag is not None and not (isinstance(event, yaml.ScalarEvent) and tag == "!" and event.implicit[1]):
            raise _Rejected(event.start_mark, f"YAML tag {tag} is not allowed in the catalog")


def _scalar(node: yaml.ScalarNode) -> Any:
    tag, value = node.tag, node.value
    if tag == _STR:
        return value
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return value.lower() == "true"
    if tag == _INT:
        if len(value) > 64:  # also keeps int() clear of Python's digit limit
            raise _Rejected(node.start_mark, f"number with {len(value)} digits is too large")
        if value.startswith("0x"):
            return int(value[2:], 16)
        if value.startswith("0o"):
            return int(value[2:], 8)
        return int(value, 10)
    if tag == _FLOAT:
        lowered = value.lower()
        if lowered.endswith(".inf"):
            return float("-inf") if lowered.startswith("-") else float("inf")
        if lowered == ".nan":
            return float("nan")
        return float(value)
    if tag == _DATE:
        try:
            return datetime.date.fromisoformat(value).isoformat()
        except ValueError:
            raise _Rejected(node.start_mark, f"invalid date {value!r}") from None
    raise _Rejected(node.start_mark, f"YAML tag {tag} is not allowed in the catalog")


@dataclass(frozen=True)
class _Marks:
    """Where :func:`_plain` records each value's and key's position."""

    positions: dict[KeyPath, tuple[int, int]]
    key_positions: dict[KeyPath, tuple[int, int]]


def _plain(node: yaml.Node, keypath: KeyPath, doc: _Marks, depth: int) -> Any:
    """Copy the node graph into plain Python, recording positions and refusing tricks."""
    if depth > MAX_DEPTH:
        raise _Rejected(node.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.MappingNode):
        if node.tag != _MAP:
            raise _Rejected(node.start_mark, f"YAML tag {node.tag} is not allowed in the catalog")
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
                raise _Rejected(key_node.start_mark, f"mapping key {getattr(key_node, 'value', '?')!r} must be a string")
            key = key_node.value
            if key == "<<":
                raise _Rejected(key_node.start_mark, "YAML merge keys (<<) are not allowed in the catalog")
            if key in out:
                raise _Rejected(key_node.start_mark, f'duplicate key "{key}"')
            child = (*keypath, key)
            doc.key_positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            doc.positions[child] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
            out[key] = _plain(value_node, child, doc, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ:
            raise _Rejected(node.start_mark, f"YAML tag {node.tag} is not allowed in the catalog")
        items = []
        for index, item in enumerate(node.value):
            child = (*keypath, index)
            doc.positions[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(_plain(item, child, doc, depth + 1))
        return items
    raise _Rejected(node.start_mark, "unsupported YAML node")  # pragma: no cover
