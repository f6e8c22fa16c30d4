"""Where the catalog's parse cache (``.companyos-cache/catalog``) and its memo of derived
facts (``.companyos-cache/names``) live: read as the catalog loads, written only after a run
found the tree clean, so a failed run leaves the disk as it was. What may be reused is
``catalog.parse_cache``'s and ``catalog.file_memo``'s decision."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from generator.catalog.file_memo import FileMemo, memo_context
from generator.catalog.load import Catalog
from generator.catalog.parse_cache import ParseCache
from generator.output.atomic import write_atomic
from generator.output.listing import CACHE_DIR
from generator.output.tree import read_file

PARSES_PATH = f"{CACHE_DIR}/catalog"
#: The tenants' name digests (``model.name_registry``), the one memo of derived facts.
MEMO_PATH = f"{CACHE_DIR}/names"
#: The folder whose files' facts are memoized (every other catalog file is the context).
MEMO_FOLDER = "tenants"


def load_parses(root: Path) -> ParseCache:
    """The last clean run's parses (empty when there are none or they cannot be read)."""
    return ParseCache.decode(_cached(root, PARSES_PATH))


@dataclass(frozen=True)
class Encoded:
    """The catalog's parses and memo as the next run reads them (None: as the last run's),
    encoded while the catalog is at hand and written (:meth:`save`) only once the run found
    the tree clean: the pipeline lets the model go before the write (``pipeline``)."""

    parses: bytes | None
    memo: bytes | None

    def save(self, root: Path) -> None:
        _keep(root, PARSES_PATH, self.parses)
        _keep(root, MEMO_PATH, self.memo)


def encode(root: Path, catalog: Catalog) -> Encoded:
    """``catalog``'s parses and memo, each when it differs from the last run's."""
    return Encoded(
        catalog.parses.encode() if catalog.parses is not None else None,
        catalog.memo.encode(_cached(root, MEMO_PATH)) if catalog.memo is not None else None,
    )


def load_memo(root: Path, catalog: Catalog, code: str, *, reuse: bool = True) -> FileMemo | None:
    """The last clean run's facts valid for ``catalog`` as read (None without the identities of
    a whole read); with ``reuse`` False an empty memo that keeps this run's facts."""
    if catalog.parses is None:
        return None
    identities = catalog.parses.identities
    context = memo_context(code, identities, MEMO_FOLDER)
    return FileMemo.decode(_cached(root, MEMO_PATH) if reuse else None, context, identities)


def _cached(root: Path, rel: str) -> bytes | None:
    """A cache file's bytes; None when there is none or it cannot be read."""
    with contextlib.suppress(OSError):
        return read_file(root / rel)
    return None


def _keep(root: Path, rel: str, data: bytes | None) -> None:
    """Write a cache file (``data`` None: nothing changed); a read-only tree just does
    without it."""
    if data is not None:
        with contextlib.suppress(OSError):
            write_atomic(root / rel, data)
