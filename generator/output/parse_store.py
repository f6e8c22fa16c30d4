"""Where the catalog's parse cache lives (``.companyos-cache/catalog``): read before the
catalog loads, written only after a run found the tree clean, so a failed run leaves the
disk as it was. What may be reused is ``catalog.parse_cache``'s decision."""

from __future__ import annotations

import contextlib
from pathlib import Path

from generator.catalog.load import Catalog
from generator.catalog.parse_cache import ParseCache
from generator.output.atomic import write_atomic
from generator.output.listing import CACHE_DIR
from generator.output.tree import read_file

PARSES_PATH = f"{CACHE_DIR}/catalog"


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
