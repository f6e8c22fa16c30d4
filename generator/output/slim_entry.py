"""A recorded unit's file entry as one small fixed-shape record instead of a dict.

At 10,000 tenants x 3 the fleet's map holds ~375,000 distinct entries once equal ones are
shared (a tenant's ~80 files have ~37 kinds: target, environment, root, and the tenant's
name). As dicts they were ~75 MB of a cold render's peak; these are 48 bytes each, outside
the garbage collector (they hold strings, and a rare ``limits`` dict of plain data, never a
cycle). msgspec decodes a unit manifest's entries straight into them (``units.parse_unit``,
``unit_cache``). Readers see the mapping a dict of the same fields would be (absent fields
absent), so they need not know which they hold: a fresh render's full entries stay dicts.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    _Readable = Mapping[str, Any]  # what readers see: registered as one below, every method defined
else:

    class _Readable:  # a msgspec Struct cannot also derive from an ABC (metaclass conflict)
        __slots__ = ()


#: The fields, in the order a manifest writes them (sorted keys).
FIELDS = ("environment", "limits", "root", "target", "tenant")
_KEYS = frozenset(FIELDS)  # asked per lookup: a set, not a scan of the tuple


class SlimEntry(msgspec.Struct, _Readable, gc=False, omit_defaults=True):
    """An entry's fields without its sha256, sources and contracts (``tree.EntryFields``),
    read as a mapping; never changed once the plan has shared it (``units._all_of``)."""

    environment: str | None = None
    limits: dict[str, Any] | None = None
    root: str | None = None
    target: str | None = None
    tenant: str | None = None

    def __getitem__(self, key: str) -> Any:
        value = getattr(self, key) if key in _KEYS else None
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key) if key in _KEYS else None
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return key in _KEYS and getattr(self, key) is not None

    def __iter__(self) -> Iterator[str]:
        return (key for key in FIELDS if getattr(self, key) is not None)

    def __len__(self) -> int:
        return sum(getattr(self, key) is not None for key in FIELDS)

    def keys(self) -> KeysView[str]:
        return KeysView(self)

    def items(self) -> ItemsView[str, Any]:
        return ItemsView(self)

    def values(self) -> ValuesView[Any]:
        return ValuesView(self)

    def __eq__(self, other: object) -> bool:
        """Equal to any mapping with the same items, a dict entry too (as a dict would be)."""
        if isinstance(other, Mapping):  # a record too: registered as one below
            return dict(self) == dict(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]  # a mapping: equal to dicts, so not hashable

    def __reduce__(self) -> tuple[type[SlimEntry], tuple[Any, ...]]:
        """Pickled as a plain :class:`SlimEntry` (a result sent to another process): a
        catalog's decoder makes a subclass of its own (``units.shared_entry``), which cannot
        be found by name."""
        return SlimEntry, msgspec.structs.astuple(self)

    def kind(self) -> tuple[Any, ...]:
        """What equal entries share (the plan's key for one record per kind)."""
        return msgspec.structs.astuple(self)


Mapping.register(SlimEntry)


def entry_field(entry: Mapping[str, Any], key: str) -> Any:
    """``entry.get(key)``: a record's field read directly (its mapping's lookup is a Python
    call: asked of 800,000 entries at 10,000 tenants x 3 it was ~0.2 s a pass). ``key``: one
    of :data:`FIELDS`."""
    return getattr(entry, key) if isinstance(entry, SlimEntry) else entry.get(key)
