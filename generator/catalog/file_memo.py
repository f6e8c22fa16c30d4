"""Keep facts derived from one catalog file and the catalog's other kinds between clean runs.

At 10,000 tenants deriving every tenant's ~90 object names again was ~1 s of a one-tenant
edit (``model.name_registry``). A fact is reused only when its file's identity (sha256 and
stat stamp, ``parse_cache``) is this run's and so is the context: the code, and the identity
of every catalog file outside the memoized folder. So a fact must be a function of its own
file and the other kinds' files alone (never of a sibling's). The stamps make a memo made
anywhere else (say, committed to a pull request) match nothing. The facts are opaque bytes
here; the pipeline loads and saves them (``output.parse_store``). Beside them, one digest per
kind of fleet-wide proof (:meth:`FileMemo.holds`): a clean run found the facts that digest
covers sound together, so the same facts need not be compared again. docs/incremental.md
("Derived facts").
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import msgspec

VERSION = 2


class _File(msgspec.Struct, array_like=True):
    version: int
    context: bytes
    #: path -> (the file's identity, the fact derived from it)
    facts: dict[str, tuple[bytes, bytes]]
    #: kind -> the digest of what a clean run last proved of that kind (:meth:`FileMemo.holds`)
    proofs: dict[str, bytes]


_ENCODER = msgspec.msgpack.Encoder()
_FILE = msgspec.msgpack.Decoder(_File)


def memo_context(salt: str, identities: Mapping[str, bytes], folder: str) -> bytes:
    """The digest of ``salt`` (the code's digest) and every file's identity (by path) outside
    ``folder``, whose files' facts are memoized."""
    inside = folder.rstrip("/") + "/"
    total = hashlib.sha256(f"file-memo-v{VERSION}\0{salt}\0".encode())
    for rel in sorted(identities):
        if not rel.startswith(inside):
            total.update(rel.encode("utf-8", "surrogateescape") + b"\0" + identities[rel])
    return total.digest()


class FileMemo:
    """The last clean run's facts (by path) until asked, and what to save: the paths whose
    kept fact was reused and the facts derived afresh. A kept fact is let go once asked
    (each is asked once a run) and :meth:`encode` takes it from the saved file again: at
    10,000 tenants holding them all through the render was ~10 MB of an edit's peak."""

    def __init__(
        self,
        context: bytes,
        identities: Mapping[str, bytes],
        old: Mapping[str, tuple[bytes, bytes]] | None = None,
        proofs: Mapping[str, bytes] | None = None,
    ) -> None:
        self.context = context
        self._identities = identities
        self._old = dict(old or {})
        self._count = len(self._old)
        self._reused: set[str] = set()
        self._new: dict[str, tuple[bytes, bytes]] = {}
        self._proofs_kept = dict(proofs or {})
        self._proofs = dict(self._proofs_kept)

    @classmethod
    def decode(cls, raw: bytes | None, context: bytes, identities: Mapping[str, bytes]) -> FileMemo:
        """The memo in ``raw`` when it was kept in ``context``; else an empty one."""
        if raw is None:
            return cls(context, identities)
        try:
            found = _FILE.decode(raw)
        except msgspec.MsgspecError:
            return cls(context, identities)
        if found.version != VERSION or found.context != context:
            return cls(context, identities)
        return cls(context, identities, found.facts, found.proofs)

    def get(self, rel: str) -> bytes | None:
        """The fact kept for ``rel`` when its file is as this run read it, else None (and
        None when asked again: a kept fact is let go once asked)."""
        kept = self._old.pop(rel, None)
        if kept is None or kept[0] != self._identities.get(rel):
            return None
        self._reused.add(rel)
        return kept[1]

    def put(self, rel: str, fact: bytes) -> None:
        """Keep ``fact``, derived from ``rel`` as read this run (a file not read is ignored)."""
        identity = self._identities.get(rel)
        if identity is not None:
            self._new[rel] = (identity, fact)
            self._reused.discard(rel)

    def holds(self, kind: str, digest: bytes) -> bool:
        """Whether the last clean run in this context proved ``kind`` of exactly what ``digest``
        covers (the caller digests every fact the proof rests on, in a fixed order)."""
        return self._proofs.get(kind) == digest

    def record(self, kind: str, digest: bytes) -> None:
        """Keep that ``kind`` was proved of what ``digest`` covers (only the last one is kept)."""
        self._proofs[kind] = digest

    def encode(self, saved: bytes | None) -> bytes | None:
        """This run's facts, to save; None when they are the last run's exactly. ``saved``:
        the memo file's bytes now, where the reused facts are taken from (each checked
        again against this run's identities: a fact it no longer holds is not saved)."""
        if not self._new and len(self._reused) == self._count and self._proofs == self._proofs_kept:
            return None
        facts: dict[str, tuple[bytes, bytes]] = {}
        if self._reused:
            old = FileMemo.decode(saved, self.context, self._identities)._old
            for rel in self._reused:
                kept = old.get(rel)
                if kept is not None and kept[0] == self._identities.get(rel):
                    facts[rel] = kept
        facts.update(self._new)
        return _ENCODER.encode(_File(VERSION, self.context, dict(sorted(facts.items())), dict(sorted(self._proofs.items()))))
