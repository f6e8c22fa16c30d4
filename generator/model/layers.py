"""Deep merge of settings layers, remembering which file:line set every value.

Semantics (documented in docs/catalog.md):

* mappings merge key by key, recursively;
* scalars and **lists replace** what lower layers set (a list is one value: appending
  across layers would make the result depend on layer count in surprising ways);
* an explicit ``null`` **resets** the key to the built-in default (for keys without a
  default, such as an image-tag pin, that means "unset"). It can never leave a required
  value missing.

Every leaf's provenance is the tuple of :class:`Origin` records of the layers that set
it, oldest first; the last one is the value in force. Merging is copy-on-write, so the
base layers shared by many tenants (defaults, tier, environment) are merged once.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.catalog.yaml_source import KeyPath, SourceDoc
from generator.errors import Location

Provenance = Mapping[str, tuple["Origin", ...]]


@dataclass(frozen=True)
class Origin:
    """One layer's say on one settings path."""

    layer: str
    location: Location
    value: Any
    reset: bool = False


@dataclass(frozen=True)
class Layer:
    """A partial settings tree found at ``keypath`` in ``doc``, applied under ``prefix``."""

    name: str
    doc: SourceDoc
    keypath: KeyPath
    prefix: tuple[str, ...] = ()

    @property
    def data(self) -> dict[str, Any]:
        node: Any = self.doc.data
        for part in self.keypath:
            node = node.get(part) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}


@dataclass(frozen=True)
class Merged:
    values: dict[str, Any]
    provenance: dict[str, tuple[Origin, ...]]


EMPTY = Merged({}, {})


def dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)


def in_force(provenance: Provenance, path: str, fallback: str) -> Location:
    """The file:line:col of the layer whose value is in force at dotted ``path`` (the file
    ``fallback`` when no layer set it)."""
    origins = provenance.get(path, ())
    return origins[-1].location if origins else Location(fallback)


def lookup(tree: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def apply(base: Merged, layer: Layer, defaults: Merged) -> Merged:
    """Return ``base`` with ``layer`` merged on top; ``base`` itself is not modified."""
    data = layer.data
    if not data:
        return base
    provenance = dict(base.provenance)
    values = _apply_mapping(base.values, data, layer.prefix, (), layer, provenance, defaults)
    return Merged(values, provenance)


def _apply_mapping(
    current: Any,
    incoming: dict[str, Any],
    prefix: tuple[str, ...],
    rel: tuple[str, ...],
    layer: Layer,
    provenance: dict[str, tuple[Origin, ...]],
    defaults: Merged,
) -> dict[str, Any]:
    if prefix:
        head, rest = prefix[0], prefix[1:]
        out = dict(current) if isinstance(current, dict) else {}
        out[head] = _apply_mapping(out.get(head), incoming, rest, (*rel, head), layer, provenance, defaults)
        return out
    out = dict(current) if isinstance(current, dict) else {}
    for key, value in incoming.items():
        path = (*rel, key)
        source_keypath = (*layer.keypath, *path[len(layer.prefix) :])
        if value is None and defaults is not EMPTY:
            out[key] = copy.deepcopy(lookup(defaults.values, path))
            _reset(path, layer, source_keypath, provenance, defaults)
        elif isinstance(value, dict):
            out[key] = _apply_mapping(out.get(key), value, (), path, layer, provenance, defaults)
        else:
            name = dotted(path)
            origin = Origin(layer.name, layer.doc.locate(source_keypath), value)
            provenance[name] = (*provenance.get(name, ()), origin)
            out[key] = value
    return out


def _reset(
    path: tuple[str, ...], layer: Layer, source_keypath: KeyPath, provenance: dict[str, tuple[Origin, ...]], defaults: Merged
) -> None:
    prefix = dotted(path)
    location = layer.doc.locate(source_keypath)
    touched = [k for k in provenance if k == prefix or k.startswith(prefix + ".")]
    touched += [k for k in defaults.provenance if (k == prefix or k.startswith(prefix + ".")) and k not in touched]
    if not touched:
        touched = [prefix]
    for name in touched:
        default = lookup(defaults.values, tuple(name.split(".")))
        provenance[name] = (*provenance.get(name, ()), Origin(layer.name, location, default, reset=True))
