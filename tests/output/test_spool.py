"""A parallel render spills its files to the spool instead of sending their bytes back
(``output.spool``): the parent holds where each lies, the bytes read back are the serial
render's, and nothing the spool would hide escapes the checks made on held bytes."""

from __future__ import annotations

import dataclasses
import itertools
import os
import pickle
import re
import sys

import pytest

from generator import pipeline
from generator.errors import CatalogErrors
from generator.output import parallel, units
from generator.output.render import render
from generator.output.spool import Spool, SpooledFiles, length_of, offset_of, spilled, stored_of
from helpers.repo import REPO

sys.path.insert(0, str(REPO / "bench"))
import run as bench  # bench/run.py: the benchmark's catalog generator


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    root = tmp_path_factory.mktemp("spool") / "repo"
    bench.make_catalog(root, 30)
    model = pipeline.resolve_only(root)
    assert parallel.usable(model, 2)
    return root, model


def test_a_parallel_render_holds_no_file_bytes_and_reads_back_the_serial_ones(large):
    _, model = large
    spread = render(model, jobs=2)
    stored, spool = stored_of(spread.files)
    assert spool is not None and len(stored) == len(spread.files) > 1000
    assert all(isinstance(where, int) for where in stored.values())  # not one file's bytes came back
    assert dict(spread.files) == dict(render(model, jobs=1).files)


def test_a_spooled_result_pickles_as_its_bytes(large):
    _, model = large
    spread = render(model, jobs=2)
    copied = pickle.loads(pickle.dumps(spread.files))
    assert type(copied) is dict and copied == dict(spread.files)


def test_a_placeholder_in_a_spilling_render_is_still_an_error_at_its_line(large):
    """The placeholder check reads only held bytes; a worker holds back any file that may
    hold one. Planted: with every file spilled, this render would pass."""
    _, model = large
    name = "helm/values.yaml.j2"
    planted = dataclasses.replace(model, templates={**model.templates, name: model.templates[name] + "# role in <account:acme/dev>\n"})
    with pytest.raises(CatalogErrors) as caught:
        render(planted, jobs=2)
    found = [str(e) for e in caught.value.errors]
    assert found
    assert all(re.match(r"^rendered/helm/[^:]+\.yaml:\d+:\d+: placeholder <account:acme/dev>", e) for e in found)


def test_what_forked_processes_spill_the_parent_reads_at_its_place():
    spool = Spool()
    pieces = [bytes([n]) * (1000 + n * 37) for n in range(8)]
    children = []
    for piece in pieces:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: spill and say where
            os.close(read)
            where = spool.put(piece)
            os.write(write, pickle.dumps(where))
            os._exit(0)
        os.close(write)
        children.append((pid, read, piece))
    places = []
    for pid, read, piece in children:
        with os.fdopen(read, "rb") as fh:
            where = pickle.loads(fh.read())
        os.waitpid(pid, 0)
        assert spool.get(where) == piece
        places.append(range(offset_of(where), offset_of(where) + length_of(where)))
    spans = sorted(places, key=lambda r: r.start)
    assert all(a.stop <= b.start for a, b in itertools.pairwise(spans))  # no two overlap


def test_a_spooled_mapping_is_a_mapping_of_bytes():
    spool = Spool()
    files = SpooledFiles({"a": b"held", "b": spool.put(b"spilled")}, spool)
    assert files["a"] == b"held" and files["b"] == b"spilled"
    assert list(files) == ["a", "b"] and "b" in files and "c" not in files
    assert files == {"a": b"held", "b": b"spilled"}


def test_a_tree_written_from_the_spool_is_the_serial_render(large, monkeypatch):
    """The tree written from a spilled render (planned, unit manifests assembled) is the one
    a serial full render compares clean with, byte for byte."""
    root, _ = large
    monkeypatch.setenv("COMPANYOS_JOBS", "2")
    built, _ = pipeline.render_to_disk(root)
    stored, spool = stored_of(built.result.files)
    assert spool is not None and all(isinstance(where, int) for where in stored.values())  # unit manifests too
    assert sum(p.startswith(units.UNITS_DIR + "/") for p in stored) == len(built.model.catalog.tenants) + 1
    monkeypatch.setenv("COMPANYOS_JOBS", "1")
    serial, status = pipeline.check(root)
    assert status.clean and status.unchanged == len(built.result.files), status.as_dict()
    assert serial is not None and stored_of(serial.result.files)[1] is None


def test_a_full_temporary_folder_keeps_the_bytes_in_memory_instead_of_failing(large, monkeypatch):
    """A spool that cannot take a file (ENOSPC) hands the bytes back, and a spool that
    cannot be made is none: the render is the serial one either way."""
    import errno

    from generator.output import spool as spool_module

    _, model = large
    serial = dict(render(model, jobs=1).files)

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_module.os, "pwrite", full)
    crowded = render(model, jobs=2)
    stored, spool = stored_of(crowded.files)
    assert spool is not None and all(isinstance(data, bytes) for data in stored.values())
    assert dict(crowded.files) == serial

    def no_temporary_file(*args, **kwargs):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(spool_module.tempfile, "TemporaryFile", no_temporary_file)
    unspooled = render(model, jobs=2)
    assert stored_of(unspooled.files)[1] is None and dict(unspooled.files) == serial


def test_an_incremental_render_of_most_tenants_spills_them_and_leaves_the_rest_on_disk(tmp_path, monkeypatch):
    """More than half the tenants changed, no stat record: the changed ones render in
    parallel into the spool, the others are read, hashed and left on disk; the mapping of
    both is the serial full render, and the tree written from it checks clean."""
    import shutil

    from generator.output import checkcache
    from generator.output.ondisk import TreeFiles

    repo = tmp_path / "repo"
    bench.make_catalog(repo, 30)
    monkeypatch.setenv("COMPANYOS_JOBS", "2")
    pipeline.render_to_disk(repo)
    names = sorted(p.stem for p in (repo / "tenants").glob("*.yaml"))
    for name in names[:20]:
        path = repo / "tenants" / f"{name}.yaml"
        path.write_text(path.read_text().replace("owner: team-", "owner: crew-"))
    shutil.rmtree(repo / checkcache.CACHE_DIR)
    built, plan = pipeline.build_incremental(repo)
    assert plan.render == set(names[:20]) and plan.hashed == set(names[20:])
    files = built.result.files
    assert isinstance(files, TreeFiles) and files._spool is not None
    fresh = f"rendered/helm/dev/{names[0]}/api.yaml"
    kept = f"rendered/helm/dev/{names[-1]}/api.yaml"
    assert isinstance(files._held[fresh], int) and kept not in files.held
    monkeypatch.setenv("COMPANYOS_JOBS", "1")
    assert dict(files) == dict(pipeline.build(repo).result.files)
    monkeypatch.setenv("COMPANYOS_JOBS", "2")
    _, report = pipeline.render_to_disk(repo)
    edited, untouched = (units.unit_path(f"tenant/{name}") for name in (names[0], names[-1]))
    assert edited in report.written and untouched not in report.written
    monkeypatch.setenv("COMPANYOS_JOBS", "1")
    _, status = pipeline.check(repo)
    assert status.clean, status.as_dict()


def test_a_spilled_place_is_one_int_that_keeps_its_offset_and_length():
    """Packed in one plain int (a file's place costs 40 bytes, not a tuple's ~124 or an int
    subclass's ~64): both parts come back exact at the ends of their ranges, it stays true
    when empty at offset 0, it crosses to a worker and back as itself, and a place it cannot
    hold is refused, not wrapped."""
    import gc
    import pickle
    import sys

    for offset, length in [(0, 0), (0, 1), (1, 0), (5 * 2**30, 123_456), (2**48, 2**40 - 1)]:
        where = spilled(offset, length)
        assert (offset_of(where), length_of(where)) == (offset, length) and where
        assert type(where) is int and not gc.is_tracked(where) and sys.getsizeof(where) <= 40
        back = pickle.loads(pickle.dumps(where))
        assert (offset_of(back), length_of(back)) == (offset, length)
    assert spilled(1, 2) != spilled(2, 1) and len({spilled(1, 2), spilled(1, 2)}) == 1
    for offset, length in [(0, 2**40), (-1, 0), (0, -1), (2**49, 0)]:
        with pytest.raises(ValueError):
            spilled(offset, length)
