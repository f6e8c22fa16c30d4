"""The sample's render written under a scratch root, and copies of it to plant faults in
(the isolation analyzer reads what is on disk)."""

from __future__ import annotations

import shutil
from pathlib import Path

from generator import pipeline


def write_rendered(build: pipeline.Build, root: Path) -> Path:
    """``build``'s ``rendered/`` files under ``root`` (nothing else); ``root``."""
    for path, data in build.result.files.items():
        if path.startswith("rendered/"):
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
    return root


def copy_rendered(clean: Path, dest: Path) -> Path:
    """A copy of ``clean``'s ``rendered/`` under ``dest``; ``dest``."""
    shutil.copytree(clean / "rendered", dest / "rendered")
    return dest
