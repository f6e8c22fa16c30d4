"""Read one YAML file into plain Python data plus a map of where every value came from.

ruamel.yaml's round-trip loader keeps line and column marks; we copy them into a flat
``positions`` dict keyed by the value's path (``("settings", "kms", "rotation_days")``)
and hand the rest of the program plain dicts, lists and scalars. That keeps pydantic in
strict mode happy and lets any later stage blame the exact ``file:line:col``.

Hostile input is refused here, before anything else sees it: bytes that are not UTF-8,
explicit YAML tags (``!!python/object``...), anchors and aliases (the "billion laughs"
bomb needs them, and the catalog's layering makes them unnecessary), duplicate keys,
non-string keys, and documents that are not a single mapping.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from generator.errors import CatalogError, Location

KeyPath = tuple[str | int, ...]
MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 32


@dataclass
class SourceDoc:
    """A parsed catalog file: its data and the 1-based (line, col) of every value and key."""

    path: str
    data: dict[str, Any]
    positions: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, keypath: KeyPath, *, key: bool = False) -> Location:
        """Best location for ``keypath``: the value itself, else its nearest ancestor."""
        table = self.key_positions if key else self.positions
        probe = tuple(keypath)
        while probe:
            if probe in table:
                line, col = table[probe]
                return Location(self.path, line, col)
            if not key and probe in self.key_positions:
                line, col = self.key_positions[probe]
                return Location(self.path, line, col)
            probe = probe[:-1]
        return Location(self.path, 1, 1)


class _Rejected(Exception):
    def __init__(self, line: int, col: int, message: str) -> None:
        self.line, self.col, self.message = line, col, message


def _yaml() -> YAML:
    loader = YAML(typ="rt", pure=True)
    loader.allow_duplicate_keys = False
    return loader


def _mark(exc: MarkedYAMLError) -> tuple[int, int]:
    mark = exc.problem_mark or exc.context_mark
    return (mark.line + 1, mark.column + 1) if mark else (1, 1)


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
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        node = _yaml().load(text)
    except MarkedYAMLError as exc:
        line, col = _mark(exc)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        if "duplicate key" in problem:
            problem = problem.split(" with value")[0]
        return None, [CatalogError(Location(path, line, col), f"YAML error: {problem}")]
    except YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        return None, [CatalogError(Location(path), f"YAML error: {exc}")]
    if node is None:
        return None, [CatalogError(Location(path), "file is empty; expected a mapping")]
    if "!" in text:  # explicit tags on plain scalars are resolved silently; find them in the events
        tagged = _first_explicit_tag(text)
        if tagged is not None:
            return None, [CatalogError(Location(path, tagged[0], tagged[1]), f"YAML tag {tagged[2]} is not allowed in the catalog")]
    if not isinstance(node, CommentedMap):
        return None, [CatalogError(Location(path), "expected a mapping at the top of the file")]
    doc = SourceDoc(path, {})
    try:
        doc.data = _plain(node, (), doc, 0)
    except _Rejected as exc:
        return None, [CatalogError(Location(path, exc.line, exc.col), exc.message)]
    return doc, []


def _first_explicit_tag(text: str) -> tuple[int, int, str] | None:
    """Position and name of the first explicitly tagged node, from the parser's events."""
    for event in _yaml().parse(text):
        tag = getattr(event, "tag", None)
        if tag is not None:  # the parser sets a tag only when the document spells one out
            mark = event.start_mark
            return mark.line + 1, mark.column + 1, str(getattr(tag, "value", tag))
    return None


def _check_node(node: Any, line: int, col: int) -> None:
    """Refuse anchors and explicit tags on a mapping or sequence node."""
    anchor = getattr(node, "anchor", None)
    if anchor is not None and getattr(anchor, "value", None):
        raise _Rejected(line, col, "YAML anchors and aliases are not allowed in the catalog")
    tag = getattr(node, "tag", None)
    tag_value = getattr(tag, "value", tag) if tag is not None else None
    if tag_value:
        raise _Rejected(line, col, f"YAML tag {tag_value!s} is not allowed in the catalog")


def _plain(node: Any, keypath: KeyPath, doc: SourceDoc, depth: int) -> Any:
    """Copy the ruamel tree into plain Python, recording positions and refusing tricks."""
    if depth > MAX_DEPTH:
        line, col = doc.positions.get(keypath, (1, 1))
        raise _Rejected(line, col, f"nesting deeper than {MAX_DEPTH} levels")
    if isinstance(node, CommentedMap):
        line, col = node.lc.line + 1, node.lc.col + 1
        _check_node(node, line, col)
        out: dict[str, Any] = {}
        for key, value in node.items():
            kline, kcol = (p + 1 for p in node.lc.key(key))
            if not isinstance(key, str):
                raise _Rejected(kline, kcol, f"mapping key {key!r} must be a string")
            child = (*keypath, str(key))
            doc.key_positions[child] = (kline, kcol)
            vline, vcol = (p + 1 for p in node.lc.value(key))
            doc.positions[child] = (vline, vcol)
            out[str(key)] = _plain(value, child, doc, depth + 1)
        return out
    if isinstance(node, CommentedSeq):
        _check_node(node, node.lc.line + 1, node.lc.col + 1)
        items = []
        for index, value in enumerate(node):
            child = (*keypath, index)
            iline, icol = (p + 1 for p in node.lc.item(index))
            doc.positions[child] = (iline, icol)
            items.append(_plain(value, child, doc, depth + 1))
        return items
    line, col = doc.positions.get(keypath, (1, 1))
    if hasattr(node, "anchor") and getattr(node.anchor, "value", None):
        raise _Rejected(line, col, "YAML anchors and aliases are not allowed in the catalog")
    type_name = type(node).__name__
    if type_name == "TaggedScalar":
        tag = getattr(node.tag, "value", node.tag)
        raise _Rejected(line, col, f"YAML tag {tag} is not allowed in the catalog")
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, datetime.datetime):
        return node.isoformat()
    if isinstance(node, datetime.date):
        return node.isoformat()
    raise _Rejected(line, col, f"unsupported YAML value of type {type_name}")
