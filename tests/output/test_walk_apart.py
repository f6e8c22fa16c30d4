"""The output folders walked in a child process (``output.walk_apart``): the listing it
sends is the walk this process would make, a child that fails or sends nothing usable
means the folders are walked here, and the child never outlives the render."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from generator import pipeline
from generator.output import listing, walk_apart
from generator.output.listing import list_folders
from generator.output.tree import OUTPUT_DIRS
from tests.helpers.repo import copy_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy with what a walk must see: a stray file, a leftover temporary file, a link to a
    file, a link to a folder, and an empty folder."""
    root = copy_repo(tmp_path / "repo")
    (root / "rendered/helm/dev/acme/planted.yaml").write_text("not ours\n")
    (root / "rendered/helm/dev/globex/api.yaml.companyos-tmp").write_text("half\n")
    (root / "rendered/helm/stage/acme/link.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    (root / "rendered/helm/stage/linked").symlink_to(tmp_path)
    (root / "rendered/helm/stage/empty").mkdir()
    return root


def _whole(found: listing.Listing) -> tuple[object, ...]:
    return (
        sorted(found.paths()),
        sorted(found.links),
        sorted(found.dirs),
        found.tops,
        found.changed,
        sorted(found._unread),
        sorted(found._racy),
        sorted(found._file_links),
        {folder: (entry.files, entry.dirs, entry.links) for folder, entry in found._folders.items()},
    )


@pytest.mark.parametrize("offer", [True, False])
def test_the_childs_listing_is_the_walk_made_here(repo: Path, monkeypatch: pytest.MonkeyPatch, offer: bool) -> None:
    spawned: list[int] = []
    real = walk_apart.subprocess.Popen

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        child = real(*args, **kwargs)
        spawned.append(child.pid)
        return child

    monkeypatch.setattr(walk_apart.subprocess, "Popen", spy)
    here = list_folders(repo, OUTPUT_DIRS, offer=offer)
    apart = walk_apart.Walk(repo, OUTPUT_DIRS, offer=offer).listing()
    assert spawned and _whole(apart) == _whole(here)
    assert "rendered/helm/dev/acme/planted.yaml" in set(apart.paths())
    assert "rendered/helm/stage/linked" in apart.links and "rendered/helm/stage/acme/link.yaml" in apart._file_links
    stamps = [entry.stamp for entry in apart._folders.values()]
    assert stamps == [entry.stamp for entry in here._folders.values()] and all(stamps) == offer  # no stat without offer


@pytest.mark.parametrize(
    "child",
    [
        "import sys; sys.exit(3)",  # fails
        "import sys; sys.stdout.buffer.write(b'\\x05\\x00\\x00\\x00abc')",  # a truncated frame
        "import sys; sys.stdout.buffer.write(b'\\x01\\x00\\x00\\x00\\xc1')",  # not msgpack
        "pass",  # nothing
    ],
)
def test_a_child_with_no_usable_listing_means_the_walk_here(repo: Path, monkeypatch: pytest.MonkeyPatch, child: str) -> None:
    monkeypatch.setattr(walk_apart, "_CHILD", child)
    walked: list[bool] = []
    real = walk_apart.list_folders

    def here(*args, **kwargs):  # type: ignore[no-untyped-def]
        walked.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(walk_apart, "list_folders", here)
    found = walk_apart.Walk(repo, OUTPUT_DIRS).listing()
    assert walked == [True] and _whole(found) == _whole(list_folders(repo, OUTPUT_DIRS))


def test_the_child_is_stopped_when_the_render_fails(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(walk_apart, "_CHILD", "import time; time.sleep(60)")
    with pytest.raises(RuntimeError), walk_apart.started(repo, OUTPUT_DIRS) as walk:
        raise RuntimeError("the render failed")
    assert walk._child is not None and walk._child.poll() is not None  # killed, not left running


def _hide_the_stray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plant a child that sends its listing without the stray file."""
    real = walk_apart.from_wire

    def without_stray(fh):  # type: ignore[no-untyped-def]
        found = real(fh)
        entry = found._folders["rendered/helm/dev/acme"]
        names = [n for n in entry.files.split("\0") if n != "planted.yaml"]
        found._folders["rendered/helm/dev/acme"] = listing._Folder(entry.stamp, "\0".join(names), entry.dirs, entry.links)
        return found

    monkeypatch.setattr(walk_apart, "from_wire", without_stray)


def test_check_reports_what_the_child_walked(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``check`` (and ``check --base``) compare with the child's listing too: the stray file
    is reported, and hidden by a child that leaves it out (the plant)."""
    pipeline.render_tree(repo)
    _, status = pipeline.check(repo, full=False)
    assert "rendered/helm/dev/acme/planted.yaml" in status.unmanaged
    _hide_the_stray(monkeypatch)
    _, status = pipeline.check(repo, full=False)
    assert "rendered/helm/dev/acme/planted.yaml" not in status.unmanaged


def test_a_render_reports_what_the_child_walked(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The incremental render takes the child's listing: the stray file is reported. A
    child that sends a listing without it (a plant) hides it, so the write truly uses what
    the child sent."""
    pipeline.render_tree(repo)  # a first render (links refused below are removed first)
    os.unlink(repo / "rendered/helm/stage/acme/link.yaml")
    os.unlink(repo / "rendered/helm/stage/linked")
    done = pipeline.render_tree(repo)
    assert "rendered/helm/dev/acme/planted.yaml" in done.report.unmanaged
    _hide_the_stray(monkeypatch)
    (repo / "tenants/acme.yaml").write_text((repo / "tenants/acme.yaml").read_text().replace("\nowner:", "\n# edited\nowner:"))
    assert pipeline.render_tree(repo).report.unmanaged == []
