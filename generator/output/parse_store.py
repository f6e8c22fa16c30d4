"""Where the catalog's parse cache (``.companyos-cache/catalog``) and its memo of derived
facts (``.companyos-cache/names``) live: read as the catalog loads, written only after a run
found the tree clean, so a failed run leaves the disk as it was. What may be reused is
``catalog.parse_cache``'s and ``catalog.file_memo``'s decision."""

from __future__ import annotations

import contextlib
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
    raw = None
    with contextlib.suppress(OSError):
        raw = read_file(root / PARSES_PATH)
    return ParseCache.decode(raw)


def save_parses(root: Path, catalog: Catalog) -> None:
    """Keep ``catalog``'s parses for the next run, when they differ from the last run's."""
    data = catalog.parses.encode() if catalog.parses is not None else None
    if data is not None:
        with contextlib.suppress(OSError):  # a cache: a read-only tree just parses again
            write_atomic(root / PARSES_PATH, data)


def load_memo(root: Path, catalog: Catalog, code: str, *, reuse: bool = True) -> FileMemo | None:
    """The last clean run's facts valid for ``catalog`` as read (None without the identities of
    a whole read); with ``reuse`` False an empty memo that keeps this run's facts."""
    if catalog.parses is None:
        return None
    identities = catalog.parses.identities
    context = memo_context(code, identities, MEMO_FOLDER)
    raw = None
    if reuse:
        with contextlib.suppress(OSError):
            raw = read_file(root / MEMO_PATH)
    return FileMemo.decode(raw, context, identities)


def save_memo(root: Path, catalog: Catalog) -> None:
    """Keep ``catalog``'s memo for the next run, when it differs from the last run's."""
    if catalog.memo is None:
        return
    saved = None
    with contextlib.suppress(OSError):
        saved = read_file(root / MEMO_PATH)
    data = catalog.memo.encode(saved)
    if data is not None:
        with contextlib.suppress(OSError):
            write_atomic(root / MEMO_PATH, data)
