"""The cached walk of the output folders (``output.listing``): a folder whose ``lstat`` is as
when it was read is not read again, and every change a walk must see (a file added, removed,
turned into a link, a folder replaced) still shows, because each changes its folder's stat."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from generator import pipeline
from generator.output import listing
from generator.output.listing import LISTING_PATH, list_folders
from generator.output.tree import OUTPUT_DIRS
from tests.helpers.repo import copy_repo

#: Folders older than this are cached in these tests (the default, two seconds, would make
#: every test wait); a change after the walk then lands well past the cached stat.
RACY_NS = 50_000_000


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(listing, "RACY_NS", RACY_NS)
    root = copy_repo(tmp_path / "repo")
    time.sleep(2 * RACY_NS / 1e9)
    return root


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders the walk reads from here on."""
    seen: list[str] = []
    real = os.scandir

    def spy(path):  # type: ignore[no-untyped-def]
        seen.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(listing.os, "scandir", spy)
    return seen


def _walk(root: Path) -> listing.Listing:
    found = list_folders(root, OUTPUT_DIRS)
    found.remember(root)
    return found


def _same(a: listing.Listing, b: listing.Listing) -> bool:
    return (a.files, a.links, a.dirs) == (b.files, b.links, b.dirs)


def test_a_second_walk_reads_no_folder_and_lists_the_same_tree(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _walk(repo)
    assert (repo / LISTING_PATH).is_file()
    assert _same(first, list_folders(repo, OUTPUT_DIRS, cached=False))
    reads = _reads(monkeypatch)
    second = _walk(repo)
    assert reads == [] and _same(first, second)
    assert "rendered/helm/dev/acme/api.yaml" in second.files


def test_an_added_file_is_listed_and_only_its_folder_is_read_again(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _walk(repo)
    planted = repo / "rendered/helm/dev/acme/planted.yaml"
    planted.write_text("not ours\n")
    reads = _reads(monkeypatch)
    found = _walk(repo)
    assert "rendered/helm/dev/acme/planted.yaml" in found.files
    assert reads == [os.path.join(os.fspath(repo), "rendered/helm/dev/acme")]
    _, status = pipeline.check(repo, full=False)
    assert status.unmanaged == ["rendered/helm/dev/acme/planted.yaml"]


def test_a_removed_file_a_link_and_a_replaced_folder_all_show(repo: Path, tmp_path: Path) -> None:
    _walk(repo)
    (repo / "rendered/helm/dev/acme/api.yaml").unlink()
    target = repo / "rendered/helm/stage/acme/api.yaml"
    target.unlink()
    target.symlink_to(tmp_path / "elsewhere.yaml")
    folder = repo / "rendered/helm/prod/acme"
    shutil.rmtree(folder)
    folder.symlink_to(tmp_path)
    found = _walk(repo)
    assert _same(found, list_folders(repo, OUTPUT_DIRS, cached=False))
    assert "rendered/helm/dev/acme/api.yaml" not in found.files
    assert "rendered/helm/stage/acme/api.yaml" in found.links
    assert "rendered/helm/prod/acme" in found.links and "rendered/helm/prod/acme" not in found.dirs
    _, status = pipeline.check(repo, full=False)
    assert "rendered/helm/dev/acme/api.yaml" in status.missing and "rendered/helm/stage/acme/api.yaml" in status.changed


def test_a_folder_changed_just_before_the_walk_is_read_every_time(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _walk(repo)
    monkeypatch.setattr(listing, "RACY_NS", 3_600 * 10**9)  # everything is "just changed"
    _walk(repo)
    reads = _reads(monkeypatch)
    _walk(repo)
    assert len(reads) == len(list_folders(repo, OUTPUT_DIRS, cached=False).dirs)


def test_a_damaged_or_foreign_cache_is_ignored(repo: Path) -> None:
    truth = list_folders(repo, OUTPUT_DIRS, cached=False)
    (repo / LISTING_PATH).parent.mkdir(parents=True, exist_ok=True)
    (repo / LISTING_PATH).write_bytes(b"\x93\x01garbage")
    assert _same(_walk(repo), truth)
    assert _same(list_folders(repo, ("rendered",)), list_folders(repo, ("rendered",), cached=False))  # other tops: not used
    assert _same(_walk(repo), truth)


def test_a_truncated_cache_is_ignored(repo: Path) -> None:
    truth = _walk(repo)
    raw = (repo / LISTING_PATH).read_bytes()
    for cut in (3, len(raw) // 2, len(raw) - 1):
        (repo / LISTING_PATH).write_bytes(raw[:cut])
        assert listing._load(repo, list(OUTPUT_DIRS)) == {}
        assert _same(list_folders(repo, OUTPUT_DIRS), truth)


def test_a_cache_of_many_folders_is_written_and_read_a_frame_at_a_time(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "_FRAME", 7)  # the sample has a few hundred folders: many frames
    truth = _walk(repo)
    (repo / LISTING_PATH).unlink()
    _walk(repo)
    loaded = listing._load(repo, list(OUTPUT_DIRS))
    assert set(loaded) == set(truth.dirs) and len(truth.dirs) > 7 * 10
    sizes = [len(frame) for frame in listing.Listing(set(), list(OUTPUT_DIRS), _folders=loaded)._frames()]
    assert len(sizes) == 1 + -(-len(loaded) // 7) and sum(sizes) == (repo / LISTING_PATH).stat().st_size


def test_a_removed_folder_leaves_the_cache_with_everything_below_it(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _walk(repo)
    gone = "rendered/helm/dev"  # and the tenants' folders below it
    assert len([d for d in listing._load(repo, list(OUTPUT_DIRS)) if d.startswith(gone + "/")]) > 3
    shutil.rmtree(repo / gone)
    reads = _reads(monkeypatch)
    found = _walk(repo)
    assert reads == [os.path.join(os.fspath(repo), "rendered/helm")]  # only the parent changed
    assert _same(found, list_folders(repo, OUTPUT_DIRS, cached=False))
    assert not [d for d in listing._load(repo, list(OUTPUT_DIRS)) if d == gone or d.startswith(gone + "/")]
    assert gone not in found.dirs and not [p for p in found.files if p.startswith(gone + "/")]


def test_the_finder_answers_as_the_set_of_every_file_in_any_order(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Listing.finder`` keeps only the last few folders' names split: asked of every file in
    path order, in reverse and shuffled (its folders evicted and split again), and of paths
    the walk did not find, it says what the set of every file says."""
    import random

    monkeypatch.setattr(listing, "_FOLDERS_KEPT", 2)  # evicted often even in the sample tree
    monkeypatch.setattr(listing, "_NAMES_KEPT", 5)  # and by their names' count
    (repo / "rendered/helm/dev/acme/linked.yaml").symlink_to("api.yaml")
    found = list_folders(repo, OUTPUT_DIRS, cached=False)
    every = sorted(found.files)
    assert "rendered/helm/dev/acme/linked.yaml" in every and len({p.rpartition("/")[0] for p in every}) > 10
    absent = [f"{p}.not-there" for p in every[::7]] + ["rendered/helm/dev/acme", "rendered/nowhere/x.yaml", "rendered"]
    shuffled = [*every, *absent]
    random.Random(5).shuffle(shuffled)
    for asked in (every, every[::-1], shuffled):
        finder = found.finder()
        assert [p for p in asked if finder(p)] == [p for p in asked if p in found.files]
    assert not any(found.finder()(p) for p in absent)
