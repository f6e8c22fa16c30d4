"""The library API the CLI and the tests share: load -> resolve -> render, and the tree ops."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from generator import checkcache, tree
from generator.load import find_root, load_catalog
from generator.model import Model, resolve
from generator.render import RenderResult, render


@dataclass(frozen=True)
class Build:
    root: Path
    model: Model
    result: RenderResult


def default_jobs() -> int:
    """Worker processes for rendering: ``COMPANYOS_JOBS``, else one per core."""
    try:
        return max(1, int(os.environ.get("COMPANYOS_JOBS", "")))
    except ValueError:
        return os.cpu_count() or 1


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector rarely while we build.

    Loading and rendering allocate millions of short-lived objects (Jinja contexts, strings,
    small dicts) on top of a large live model; with CPython's default thresholds a full
    collection walks that whole heap again and again, about a tenth of a large render's
    time. Reference counting still frees nearly everything at once; cycles wait a little."""
    previous = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def build(root: Path | None = None, jobs: int | None = None) -> Build:
    """Load, resolve and render the catalog at ``root`` (default: found from the cwd)."""
    root = find_root(root or Path.cwd())
    with fewer_collections():
        model = resolve(load_catalog(root))
        return Build(root, model, render(model, jobs=jobs if jobs is not None else default_jobs()))


def render_to_disk(root: Path | None = None) -> tuple[Build, tree.WriteReport]:
    with fewer_collections():  # reading the old manifest allocates a dict per file, too
        built = build(root)
        report = tree.write(built.result, built.root)
        if not report.unmanaged:  # then the tree now holds exactly built.result.files
            checkcache.remember_clean(built.root, built.result.files)
        return built, report


def check(root: Path | None = None, *, use_cache: bool = False) -> tuple[Build | None, tree.TreeStatus]:
    """Compare the tree with a fresh render. With ``use_cache``, a tree verified clean before
    and unchanged since (inputs, code and outputs hash the same) is reported clean without
    rendering; the Build is then None (see ``checkcache``)."""
    root = find_root(root or Path.cwd())
    inputs = checkcache.inputs_digest(root) if use_cache else None
    if inputs is not None:
        files = checkcache.known_clean(root, inputs)
        if files is not None:
            return None, tree.TreeStatus(unchanged=files)
    with fewer_collections():
        built = build(root)
        status = tree.status(built.result, built.root)
    if status.clean:  # the tree holds exactly these bytes: hash them from memory
        checkcache.remember_clean(built.root, built.result.files, inputs)
    return built, status
