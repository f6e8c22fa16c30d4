"""The repository as it was at a base git ref, for the guards that compare against it.

``companyos check --base REF``, ``validate --base REF`` and ``cost --base REF`` need
yesterday's catalog and yesterday's committed output next to today's. We read the blobs
of REF's tree with gitpython and write them into a temporary folder (never the working
tree, never ``git checkout``), then load that folder with today's code. Only regular
files are exported (links are skipped), and paths come from git's own tree, so nothing
can land outside the temporary folder.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from generator.errors import CatalogErrors
from generator.git import git_path, require_repo, resolve_commit
from generator.yamlsource import parse_yaml

#: What a base needs: catalog inputs, templates and the committed output.
EXPORTED = ("catalog", "tenants", "environments", "templates", "rendered")
_REGULAR_FILE_MODES = (0o100644, 0o100755)


@dataclass
class Baseline:
    ref: str
    #: A temporary folder laid out like the repository root at ``ref``.
    root: Path
    _model: Any = field(default=None, repr=False)
    _model_error: str | None = field(default=None, repr=False)

    def raw(self, pattern: str) -> dict[str, dict[str, Any]]:
        """Parsed YAML of the files matching ``pattern``, by file stem (bad files skipped)."""
        out: dict[str, dict[str, Any]] = {}
        for path in sorted(self.root.glob(pattern)):
            doc, _ = parse_yaml(path.relative_to(self.root).as_posix(), path.read_bytes())
            if doc is not None:
                out[path.stem] = doc.data
        return out

    def file(self, rel: str) -> bytes | None:
        path = self.root / rel
        return path.read_bytes() if path.is_file() else None

    def model(self) -> Any | None:
        """The base catalog resolved with today's code and without policy enforcement, or
        None when it no longer loads (see :attr:`model_error`)."""
        if self._model is None and self._model_error is None:
            from generator.load import load_catalog
            from generator.model import resolve
            from generator.policy import not_enforced

            try:
                with not_enforced():
                    self._model = resolve(load_catalog(self.root))
            except CatalogErrors as errors:
                first = errors.errors[0] if errors.errors else "unknown error"
                self._model_error = f"the catalog at {self.ref} does not load with this version of companyos ({len(errors.errors)} errors; first: {first})"
        return self._model

    @property
    def model_error(self) -> str | None:
        self.model()
        return self._model_error


def export(root: Path, ref: str, dest: Path) -> None:
    """Write the :data:`EXPORTED` folders of ``ref`` (relative to ``root``) into ``dest``."""
    repo = require_repo(root, "--base compares against a git ref")
    commit = resolve_commit(repo, ref)
    for item in EXPORTED:
        rel = git_path(repo, root, item)
        try:
            tree = commit.tree / rel
        except KeyError:
            continue
        if tree.type != "tree":
            continue
        for blob in tree.traverse():
            if blob.type != "blob" or blob.mode not in _REGULAR_FILE_MODES:
                continue
            inner = PurePosixPath(blob.path).relative_to(PurePosixPath(rel))
            if any(part in ("", ".", "..") for part in inner.parts):
                continue
            target = dest / item / Path(*inner.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob.data_stream.read())


@contextlib.contextmanager
def at(root: Path, ref: str) -> Iterator[Baseline]:
    """``with baseline.at(root, "origin/main") as base: ...`` -- cleaned up afterwards."""
    with tempfile.TemporaryDirectory(prefix="companyos-base-") as tmp:
        export(root, ref, Path(tmp))
        yield Baseline(ref, Path(tmp))
