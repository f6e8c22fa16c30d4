"""The code digest (``units.code_digest``): every package file and the output-shaping library
versions; asked twice a run, the package is read once while nothing in it changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.output import units


def test_the_code_digest_is_read_once_while_no_package_file_stats_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run asks the code digest twice; the package's ~18 MB are read once, and again as
    soon as any package file's stat differs."""
    first = units.code_digest()
    reads: list[Path] = []
    real_read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real_read(self))
    assert units.code_digest() == first and reads == []
    real_key = units._stat_key
    monkeypatch.setattr(units, "_stat_key", lambda path: (*real_key(path)[:3], -1) if path.name == "units.py" else real_key(path))
    assert units.code_digest() == first and any(path.name == "units.py" for path in reads)  # read again, the same bytes
