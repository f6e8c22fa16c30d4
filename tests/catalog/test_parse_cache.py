"""The catalog's parse cache (``catalog.parse_cache``, ``.companyos-cache/catalog``): a file
is parsed again unless its bytes and its stat are as when it was cached, a cached parse is
the parse, a cache from elsewhere is never used, a failed run does not write it, and
``--full``/``--base`` parse every file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest

from generator import pipeline
from generator.catalog.load import Catalog, read_catalog
from generator.errors import CatalogErrors
from generator.output.parse_store import PARSES_PATH, encode, load_parses


def _docs(catalog: Catalog) -> dict[str, tuple[Any, dict[Any, Any], dict[Any, Any]]]:
    return {
        entry.path: (entry.doc.data, dict(entry.doc.positions), dict(entry.doc.key_positions))
        for entries in catalog.entries.values()
        for entry in entries.values()
    }


def _cached(repo: Path) -> Catalog:
    """Save a read's parses (as a clean run does), then read the catalog through them."""
    first, _ = read_catalog(repo, cache=load_parses(repo))
    encode(repo, first).save(repo)
    cache = load_parses(repo)
    catalog, errors = read_catalog(repo, cache=cache)
    assert not errors
    return catalog


def _forge(repo: Path, rel: str, change: dict[str, Any], *, stamp: tuple[int, ...] | None = None) -> None:
    """Rewrite ``rel``'s cached parse: its data updated with ``change`` (and its stamp)."""
    version, entries = msgspec.msgpack.decode((repo / PARSES_PATH).read_bytes())
    entries[rel][2].update(change)
    if stamp is not None:
        entries[rel][0] = list(stamp)
    (repo / PARSES_PATH).write_bytes(msgspec.msgpack.encode([version, entries]))


def _stamp(path: Path) -> tuple[int, ...]:
    st = os.lstat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def test_a_cached_parse_is_the_parse_and_no_file_is_parsed_again(repo: Path) -> None:
    fresh, _ = read_catalog(repo)
    cache = load_parses(repo)
    assert cache.encode() is None and cache.parsed == 0  # nothing saved yet: nothing to reuse
    catalog = _cached(repo)
    assert catalog.parses is not None and catalog.parses.parsed == 0
    assert _docs(catalog) == _docs(fresh)  # data, every value's and key's line:col
    assert catalog.tenants["acme"].locate("tier") == fresh.tenants["acme"].locate("tier")


def test_a_fresh_parse_keeps_its_positions_encoded_and_they_are_the_parse_s(repo: Path) -> None:
    """A file parsed afresh through the cache holds its positions as the rows the cache
    encodes, decoded when a location is asked (at 10,000 tenants the tables were ~25 MB of
    every cold render's peak)."""
    plain, _ = read_catalog(repo)
    cache = load_parses(repo)
    fresh, errors = read_catalog(repo, cache=cache)
    assert not errors and cache.parsed == sum(len(entries) for entries in fresh.entries.values())
    docs = [entry.doc for entries in fresh.entries.values() for entry in entries.values()]
    assert not any(isinstance(doc.positions, dict) or isinstance(doc.key_positions, dict) for doc in docs)
    assert _docs(fresh) == _docs(plain)  # every value's and key's line:col
    assert fresh.tenants["acme"].locate("tier") == plain.tenants["acme"].locate("tier")


def test_an_edited_file_is_parsed_again_and_only_it(repo: Path) -> None:
    _cached(repo)
    tenant = repo / "tenants/acme.yaml"
    tenant.write_text(tenant.read_text().replace("\nowner:", "\n# moved down one line\nowner:"))
    cache = load_parses(repo)
    catalog, errors = read_catalog(repo, cache=cache)
    assert not errors and cache.parsed == 1
    assert _docs(catalog) == _docs(read_catalog(repo)[0])  # the new line numbers, not the cached ones


def test_a_cached_parse_whose_sha256_differs_is_not_used(repo: Path) -> None:
    """The stamp matching is not enough (a change within one timestamp tick keeps it)."""
    catalog = _cached(repo)
    rel = catalog.tenants["acme"].path
    tenant = repo / rel
    _forge(repo, rel, {"owner": "forged@example.com"}, stamp=_stamp(tenant))  # this run's stamp, another file's data
    read, _ = read_catalog(repo, cache=load_parses(repo))
    assert read.tenants["acme"].spec.owner == "forged@example.com"  # the plant is live: stamp and sha256 match
    tenant.write_bytes(tenant.read_bytes().replace(b"owner:", b"owner:  ", 1))
    _forge(repo, rel, {"owner": "forged@example.com"}, stamp=_stamp(tenant))  # the stamp kept up, the bytes did not
    cache = load_parses(repo)
    read, _ = read_catalog(repo, cache=cache)
    assert read.tenants["acme"].spec.owner != "forged@example.com" and cache.parsed == 1


def test_a_cache_made_elsewhere_is_never_used(tmp_path: Path, repo: Path) -> None:
    """A cache committed to a pull request: a fresh clone's files have other stat stamps."""
    catalog = _cached(repo)
    rel = catalog.tenants["acme"].path
    _forge(repo, rel, {"owner": "forged@example.com"})
    clone = tmp_path / "clone"
    shutil.copytree(repo, clone)  # same bytes, new inodes and ctimes
    cache = load_parses(clone)
    read, _ = read_catalog(clone, cache=cache)
    assert read.tenants["acme"].spec.owner != "forged@example.com"
    assert cache.parsed == sum(len(entries) for entries in read.entries.values())


def test_full_and_base_reads_parse_every_file(repo: Path) -> None:
    catalog = _cached(repo)
    rel = catalog.tenants["acme"].path
    _forge(repo, rel, {"owner": "forged@example.com"}, stamp=_stamp(repo / rel))
    assert pipeline.load(repo).tenants["acme"].spec.owner == "forged@example.com"  # the plant is live
    assert pipeline.load(repo, parses="fresh").tenants["acme"].spec.owner != "forged@example.com"
    assert pipeline.load(repo, parses="none").tenants["acme"].spec.owner != "forged@example.com"
    assert pipeline.load(repo, parses="none").parses is None  # check --base: nothing kept, nothing saved
    full = pipeline.build(repo)  # render --full, check --full: every file parsed, the parses kept for the next run
    catalog = full.model.catalog
    assert catalog.tenants["acme"].spec.owner != "forged@example.com"
    assert catalog.parses is not None and catalog.parses.parsed == sum(len(entries) for entries in catalog.entries.values())


def test_a_clean_render_saves_the_cache_and_a_failed_run_leaves_it_as_it_was(repo: Path) -> None:
    pipeline.render_tree(repo, full=True)  # parses every file, and keeps the parses
    cache = load_parses(repo)
    read_catalog(repo, cache=cache)
    assert cache.parsed == 0 and cache.encode() is None  # every file reused: nothing new to save
    tenant = repo / "tenants/acme.yaml"
    edited = tenant.read_text().replace("\nowner:", "\n# an edit\nowner:")
    assert edited != tenant.read_text()
    tenant.write_text(edited)
    pipeline.render_tree(repo)  # the incremental render parses the edited file and saves it
    cache = load_parses(repo)
    read_catalog(repo, cache=cache)
    assert cache.parsed == 0
    before = (repo / PARSES_PATH).read_bytes()
    tenant = repo / "tenants/acme.yaml"
    tenant.write_text(tenant.read_text().replace("tier:", "tier: [unclosed\nx:"))
    with pytest.raises(CatalogErrors, match=r"acme\.yaml:\d+:\d+"):
        pipeline.render_tree(repo)
    assert (repo / PARSES_PATH).read_bytes() == before


def test_a_damaged_or_older_cache_reads_as_empty(repo: Path) -> None:
    _cached(repo)
    for damaged in (b"not msgpack", msgspec.msgpack.encode([0, {}]), b""):
        (repo / PARSES_PATH).write_bytes(damaged)
        cache = load_parses(repo)
        catalog, errors = read_catalog(repo, cache=cache)
        assert not errors and cache.parsed == sum(len(entries) for entries in catalog.entries.values())
