"""Remember a verified-clean tree, so an unchanged repository checks in a fraction of a render.

``check`` must render the whole catalog to compare it with the tree, which is most of a
render's time. But the answer only depends on (a) every input byte -- catalog files,
templates, the generator's own code and the versions of the libraries that shape output --
(b) every output byte on disk, and (c) today's date, because waivers expire. After a full ``check`` or ``render`` finds the tree
clean, we store one digest of each in ``.companyos-cache/check.json``. A later ``check``
that computes the same two digests (hashing files is cheap; parsing and rendering are not)
knows the answer without rendering. Any difference at all, a missing or unreadable cache,
``--full`` or ``--base`` takes the full path, which stays the authority: CI clones have no
cache, so CI always checks in full.

The cache lives outside ``rendered/`` and is ignored by git (``.gitignore``).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

from generator.output import tree
from generator.output.atomic import write_atomic
from generator.output.tree import files_under, read_file, read_manifest

CACHE_PATH = ".companyos-cache/check.json"
CACHE_VERSION = 1
#: Folders whose every file is an input to the render.
INPUT_DIRS = ("catalog", "environments", "tenants", "templates")
#: Libraries whose version can change the bytes we write.
OUTPUT_LIBRARIES = ("jinja2", "pyyaml", "pydantic", "pydantic-core")
#: Outputs whose every file counts; generated workflows are added from the manifest (the
#: folder may also hold hand-written ones, which do not affect `check`), and leftover
#: temporary files from every output folder.
OUTPUT_DIRS = ("rendered",)


def _digest(root: Path, paths: Iterable[str], known: Mapping[str, bytes] | None = None) -> str:
    """One hash over (path, content hash) pairs; ``known`` supplies contents already in memory."""
    total = hashlib.sha256()
    base = os.fspath(root)
    for rel in paths:
        data = known.get(rel) if known is not None else None
        if data is None:
            with contextlib.suppress(OSError):  # unreadable counts as missing
                data = read_file(os.path.join(base, rel))
        total.update(rel.encode() + b"\0" + hashlib.sha256(b"\0missing" if data is None else data).digest())
    return total.hexdigest()


def inputs_digest(root: Path) -> str:
    """Every input file, the generator's code and the output-shaping library versions."""
    package = Path(__file__).resolve().parents[1]  # the whole ``generator`` package, not just output/
    code = _digest(package, [p.relative_to(package).as_posix() for p in sorted(package.rglob("*")) if p.suffix in (".py", ".yaml")])
    versions = []
    for name in OUTPUT_LIBRARIES:
        try:
            versions.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}==?")
    today = datetime.date.today().isoformat()  # an expired waiver turns a clean catalog into an error
    head = hashlib.sha256(f"{CACHE_VERSION}|{today}|{code}|{','.join(versions)}".encode()).hexdigest()
    return hashlib.sha256((head + _digest(root, files_under(root, INPUT_DIRS))).encode()).hexdigest()


def _output_paths(root: Path) -> list[str]:
    """Everything under rendered/ plus the generated workflows the manifest on disk lists."""
    paths = set(files_under(root, OUTPUT_DIRS))
    paths.update(p for p in read_manifest(root) if not p.startswith("rendered/"))
    # Temporary files an interrupted write left there make ``check`` fail: they must not
    # match a digest taken without them.
    paths.update(p for p in files_under(root, tree.OUTPUT_DIRS) if p.endswith(tree.TMP_SUFFIX))
    return sorted(paths)


def outputs_digest(root: Path) -> str:
    return _digest(root, _output_paths(root))


def _read(root: Path) -> dict[str, object]:
    try:
        data = json.loads((root / CACHE_PATH).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def known_clean(root: Path, inputs: str | None = None) -> int | None:
    """The number of generated files when the tree is exactly as last verified clean, else
    None. ``inputs``: :func:`inputs_digest`, when the caller has it already."""
    cached = _read(root)
    if cached.get("version") != CACHE_VERSION or "inputs" not in cached:
        return None
    if cached["inputs"] != (inputs or inputs_digest(root)) or cached.get("outputs") != outputs_digest(root):
        return None
    files = cached.get("files")
    return files if isinstance(files, int) else None


def remember_clean(root: Path, outputs: Mapping[str, bytes], inputs: str | None = None) -> None:
    """Record that the tree as it is now matches the catalog as it is now (best effort).

    ``outputs``: every output file exactly as it now is on disk (after a render with no
    unmanaged files, or a check that found the tree clean), so their digest comes from
    memory instead of reading the tree back. ``inputs``: as for :func:`known_clean`."""
    entry = {
        "version": CACHE_VERSION,
        "inputs": inputs or inputs_digest(root),
        "outputs": _digest(root, sorted(outputs), outputs),
        "files": len(outputs),
    }
    with contextlib.suppress(OSError):  # a read-only checkout simply never takes the fast path
        write_atomic(root / CACHE_PATH, json.dumps(entry, sort_keys=True) + "\n")
