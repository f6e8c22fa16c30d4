"""render / check / diff against a real tree: atomic writes, pruning, exit codes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from generator import pipeline
from generator.catalog.folders import MANIFEST_PATH
from generator.errors import UsageError
from generator.output import tree, units
from helpers.catalog_edit import edit_yaml
from helpers.repo import REPO, snapshot


def fail_on_write(monkeypatch, call: int, error: BaseException) -> dict[str, int]:
    """Make the ``call``-th file write of ``tree.write`` raise ``error``; returns the call counter."""
    calls = {"n": 0}
    real = tree._write_file

    def flaky(path: str, data: bytes, new: bool) -> None:
        calls["n"] += 1
        if calls["n"] == call:
            raise error
        real(path, data, new)

    monkeypatch.setattr(tree, "_write_file", flaky)
    return calls


def manifest_files(root: Path) -> dict[str, dict]:
    return tree.read_manifest(root, own=False)


def test_render_from_scratch_matches_committed_tree(companyos, repo, tmp_path):
    shutil.rmtree(repo / "rendered")
    result = companyos("render", cwd=repo)
    assert result.code == 0, result.err
    fresh = snapshot(repo / "rendered")
    assert fresh == snapshot(REPO / "rendered")


def test_noop_render_writes_nothing(companyos, repo):
    before = {p: p.stat().st_mtime_ns for p in (repo / "rendered").rglob("*") if p.is_file()}
    result = companyos("render", cwd=repo)
    assert result.code == 0 and " 0 written" in result.out
    after = {p: p.stat().st_mtime_ns for p in (repo / "rendered").rglob("*") if p.is_file()}
    assert before == after


def test_check_passes_then_fails_with_changed_missing_stale_and_unmanaged(companyos, repo):
    assert companyos("check", cwd=repo).code == 0
    changed = repo / "rendered/helm/prod/globex/api.yaml"
    original = changed.read_text()
    changed.write_text(original.replace('applicationName: "api"', 'applicationName: "hand-edited"'))
    assert changed.read_text() != original
    missing = repo / "rendered/helm/dev/globex/web.yaml"
    missing.unlink()
    unmanaged = repo / "rendered/helm/dev/notes.txt"
    unmanaged.write_text("hand-made\n")
    edit_yaml(repo / "tenants/hooli.yaml", lambda d: d.__setitem__("services", ["api", "worker"]))
    result = companyos("check", "--format", "json", cwd=repo)
    assert result.code == 1
    report = json.loads(result.out)
    assert {units.unit_path("tenant/hooli"), "rendered/helm/prod/globex/api.yaml"} <= set(report["changed"])
    assert not [p for p in report["changed"] if p.startswith("rendered/helm/") and p != "rendered/helm/prod/globex/api.yaml"]
    assert report["missing"] == ["rendered/helm/dev/globex/web.yaml"]
    assert [p for p in report["stale"] if p.startswith("rendered/helm/")] == [
        f"rendered/helm/{env}/hooli/web.yaml" for env in ("dev", "prod")
    ]
    assert report["unmanaged"] == ["rendered/helm/dev/notes.txt"]
    # the text report caps its diff (hooli's removed web changes hundreds of lines first);
    # `companyos diff` prints all of it, the hand edit included
    text = companyos("check", cwd=repo)
    assert text.code == 1 and "changed   rendered/helm/prod/globex/api.yaml" in text.out
    assert "more diff lines; run `companyos diff`" in text.out
    full = companyos("diff", cwd=repo)
    assert '-applicationName: "hand-edited"' in full.out and '+applicationName: "api"' in full.out


@pytest.mark.parametrize("verified", ["every file", "none"])
def test_status_finds_a_gone_file_missing_even_when_verified_and_a_link_changed(repo, tmp_path, verified):
    """The status counts verified files by one pass over the listing: a verified file that is
    gone since (or turned into a link) is still missing (or changed), never unchanged; with
    nothing verified every file is compared (a full render's status)."""
    built = pipeline.build(repo)
    gone, linked = "rendered/helm/dev/globex/web.yaml", "rendered/helm/prod/globex/api.yaml"
    (repo / gone).unlink()
    (repo / linked).unlink()
    (repo / linked).symlink_to(tmp_path / "elsewhere.yaml")
    trusted = frozenset(built.result.files) if verified == "every file" else frozenset()
    st = tree.status(built.result, repo, verified=tree.Proven(trusted))
    assert st.missing == [gone] and st.changed == [linked]
    assert st.unchanged == len(built.result.files) - 2
    assert not st.stale and not st.unmanaged and not st.leftover


def test_render_prunes_only_generated_files(companyos, repo):
    hand_written = repo / ".github/workflows/hand-written.yml"
    hand_written.parent.mkdir(parents=True, exist_ok=True)
    hand_written.write_text("name: mine\n")
    unmanaged = repo / "rendered/README.txt"
    unmanaged.write_text("not ours\n")
    before = manifest_files(repo)
    (repo / "tenants/hooli.yaml").unlink()
    result = companyos("render", cwd=repo)
    assert result.code == 0, result.err
    after = manifest_files(repo)
    removed = sorted(set(before) - set(after))
    assert removed and all(before[p].get("tenant") == "hooli" for p in removed)
    assert all(not (repo / p).exists() for p in removed)
    assert not (repo / "rendered/helm/dev/hooli").exists(), "emptied folders are removed"
    assert hand_written.read_text() == "name: mine\n" and unmanaged.exists()
    assert "rendered/README.txt is under rendered/ but was not generated" in result.err
    assert companyos("check", cwd=repo).code == 1  # the unmanaged file still fails check
    unmanaged.unlink()
    assert companyos("check", cwd=repo).code == 0


def test_failed_write_leaves_previous_tree_intact(repo, monkeypatch):
    edit_yaml(repo / "catalog/services/api.yaml", lambda d: d["image"].__setitem__("tag", "9.9.9"))
    built = pipeline.build(repo)
    before = snapshot(repo)
    fail_on_write(monkeypatch, 5, OSError("disk full"))
    with pytest.raises(OSError):
        tree.write(built.result, repo)
    monkeypatch.undo()
    assert snapshot(repo) == before
    assert not list(repo.rglob("*" + tree.TMP_SUFFIX))


def test_diff_prints_unified_diff(companyos, repo):
    # dev runs its recorded release (image.releases.dev), not image.tag: change that release
    edit_yaml(repo / "catalog/services/web.yaml", lambda d: d["image"]["releases"]["dev"].__setitem__("tag", "3.3.0"))
    result = companyos("diff", cwd=repo)
    assert result.code == 1
    assert "--- a/rendered/helm/dev/globex/web.yaml" in result.out
    assert '-    tag: "3.2.0"' in result.out and '+    tag: "3.3.0"' in result.out


def test_manifest_records_hash_sources_and_owner(sample):
    import hashlib

    files = sample.result.manifest["files"]
    assert set(files) == set(sample.result.files) - {MANIFEST_PATH}
    for path, entry in files.items():
        assert entry["sha256"] == hashlib.sha256(sample.result.files[path]).hexdigest()
        # the unit manifests (output.units) describe other files and have no catalog sources
        if path.startswith(units.unit_path(units.GLOBAL).rsplit("/", 1)[0] + "/"):
            assert entry["target"] == "units" and entry["sources"] == []
            continue
        assert entry["sources"] and all(not s.startswith("/") for s in entry["sources"])
    entry = files["rendered/helm/prod/acme/api.yaml"]
    assert entry["tenant"] == "acme" and entry["environment"] == "prod"
    assert {"tenants/acme.yaml", "catalog/services/api.yaml", "catalog/tiers/regulated.yaml", "environments/prod.yaml"} <= set(
        entry["sources"]
    )
    assert "catalog/services/web.yaml" not in entry["sources"]


def test_failed_cold_render_leaves_no_files_behind(repo, monkeypatch):
    """New files are written in place (no temporary sibling); a failure must delete them."""
    shutil.rmtree(repo / "rendered")
    built = pipeline.build(repo)
    before = snapshot(repo)
    calls = fail_on_write(monkeypatch, 50, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        tree.write(built.result, repo)
    monkeypatch.undo()
    assert calls["n"] == 50
    assert snapshot(repo) == before
    assert not any(p.is_file() for p in (repo / "rendered").rglob("*"))


@pytest.mark.parametrize("link", ["rendered/helm/dev", "rendered/helm/dev/acme/api.yaml", "rendered"])
def test_render_never_writes_through_a_symbolic_link(companyos, repo, tmp_path, link):
    """A link planted in the output tree (to a folder or a file outside the repository) is
    refused with exit 2 before anything is written, and its target stays untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "api.yaml").write_text("mine\n")
    edit_yaml(repo / "catalog/services/api.yaml", lambda d: d["image"].__setitem__("tag", "9.9.9"))
    planted = repo / link
    shutil.rmtree(planted) if planted.is_dir() else planted.unlink()
    planted.symlink_to(outside if link != "rendered/helm/dev/acme/api.yaml" else outside / "api.yaml")
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2, result.err
    assert "refusing to touch" in result.err and "Traceback" not in result.err
    assert snapshot(repo) == before
    assert sorted(p.name for p in outside.iterdir()) == ["api.yaml"] and (outside / "api.yaml").read_text() == "mine\n"


def test_a_reused_file_swapped_for_a_link_to_the_same_bytes_is_still_refused(companyos, repo, tmp_path):
    """An incremental render reuses an unedited tenant's files without re-reading them for the
    comparison (their bytes were read under the lock): a symbolic link in place of one, even to
    identical bytes, is still seen, refused by render and reported by check."""
    rel = "rendered/helm/dev/acme/api.yaml"
    outside = tmp_path / "outside.yaml"
    outside.write_bytes((repo / rel).read_bytes())
    (repo / rel).unlink()
    (repo / rel).symlink_to(outside)
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2 and "refusing to touch" in result.err and rel in result.err, result.err
    assert snapshot(repo) == before
    _, status = pipeline.check(repo, full=False)
    assert rel in status.changed


def test_a_file_that_appears_during_the_write_is_never_clobbered_or_deleted(repo, monkeypatch):
    """New files are opened with O_EXCL: if something creates one between our walk and our
    write, the write fails, our own new files are removed again, and theirs stays."""
    shutil.rmtree(repo / "rendered/helm")
    built = pipeline.build(repo)
    listing = tree.list_folders(repo, tree.OUTPUT_DIRS)  # the tree as our walk saw it
    before = snapshot(repo)
    theirs = repo / "rendered/helm/prod/acme/api.yaml"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("theirs\n")
    monkeypatch.setattr(tree, "list_folders", lambda root, folders, **_: listing)
    with pytest.raises(FileExistsError):
        tree.write(built.result, repo)
    monkeypatch.undo()
    assert theirs.read_text() == "theirs\n"
    theirs.unlink()
    assert snapshot(repo) == before


def test_a_file_system_error_is_reported_with_exit_3_and_the_tree_is_restored(companyos, repo, monkeypatch):
    import errno

    edit_yaml(repo / "catalog/services/api.yaml", lambda d: d["image"].__setitem__("tag", "9.9.9"))
    before = snapshot(repo)
    fail_on_write(monkeypatch, 3, OSError(errno.ENOSPC, "No space left on device", "rendered/helm/dev/acme/api.yaml"))
    result = companyos("render", cwd=repo)
    assert result.code == 3
    assert "rendered/helm/dev/acme/api.yaml: No space left on device" in result.err and "Traceback" not in result.err
    assert snapshot(repo) == before


def test_a_link_planted_under_a_temporary_name_is_not_written_through(companyos, repo, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("mine\n")
    edit_yaml(repo / "catalog/services/api.yaml", lambda d: d["image"].__setitem__("tag", "9.9.9"))
    (repo / ("rendered/helm/dev/acme/api.yaml" + tree.TMP_SUFFIX)).symlink_to(outside)
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    # refused before the first write (a link is found by the walk), not half-way through
    assert result.code == 2 and "Traceback" not in result.err
    assert outside.read_text() == "mine\n"
    assert snapshot(repo) == before
    assert 'tag: "9.9.9"' not in (repo / "rendered/helm/dev/acme/api.yaml").read_text()


def test_read_file_limits_and_missing(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 3_000_000)
    assert tree.read_file(path) == b"x" * 3_000_000  # more than one read
    assert tree.read_file(path, 5) == b"xxxxx" and tree.read_file(path, 0) == b""
    assert tree.read_file(tmp_path / "missing") is None and tree.read_file(tmp_path) is None
    assert tree.read_file(tmp_path / "f" / "below-a-file") is None


@pytest.mark.parametrize("broken", ["[]", "not json", '{"files": 3}'])
def test_a_broken_manifest_on_disk_is_treated_as_absent(companyos, repo, broken):
    """Nothing is pruned on its word (it lists nothing) and render rewrites it."""
    if (repo / MANIFEST_PATH).exists():  # a tree rendered before units: migrate it first
        assert companyos("render", cwd=repo).code == 0 and not (repo / MANIFEST_PATH).exists()
    for rel in tree.files_under(repo, (tree.UNITS_DIR,)):
        (repo / rel).write_text(broken)
    assert tree.read_manifest(repo) == {}
    result = companyos("render", cwd=repo)
    assert result.code == 0, result.err
    assert companyos("check", "--full", cwd=repo).code == 0


@pytest.mark.parametrize(
    ("data", "listed"),
    [
        (b'{"files": {"rendered/a.yaml": {"sha256": "ab", "root": "r", "contracts": {"provides": []}}}}', True),
        (b'{"files": {"rendered/a.yaml": {"sha256": 7}}}', False),  # an entry of the wrong shape
        (b'{"files": ["rendered/a.yaml"]}', False),
        (b'["files"]', False),
        (b'{"files": {"rendered/a.yaml": {"sha256": "ab"}', False),  # truncated
        (b"\xff\xfe", False),
        (b"", False),
    ],
)
def test_manifest_files_lists_only_a_well_formed_manifest(data: bytes, listed: bool) -> None:
    """What prune, affected and the destructive guard read: anything but a manifest lists
    nothing (its files are then never pruned); the contracts are not part of the listing."""
    from generator.output import tree

    found = tree.manifest_files(data)
    if listed:
        assert found == {"rendered/a.yaml": {"sha256": "ab", "root": "r"}}
    else:
        assert found == {}


def test_a_status_keeps_only_which_paths_the_previous_manifests_list(repo, monkeypatch):
    """``check`` asks of the previous unit manifests only whether they list a path the result
    does not render (a stale file): each is decoded and its entries let go, one shared empty
    entry kept for such a path, none for a rendered one (at 10,000 tenants the entries were
    ~600 MB of ``check --full``, the rendered paths ~220 MB more); stale files still show."""
    kept: list[dict] = []
    real = tree.read_manifest
    monkeypatch.setattr(tree, "read_manifest", lambda *a, **k: kept.append(real(*a, **k)) or kept[-1])
    edit_yaml(repo / "tenants/hooli.yaml", lambda d: d.__setitem__("services", ["api"]))
    _, st = pipeline.check(repo, use_cache=False, full=True)
    assert {f"rendered/helm/{env}/hooli/web.yaml" for env in ("dev", "prod")} <= set(st.stale)
    (previous,) = kept
    assert set(previous) == set(st.stale) and len(previous) < 50  # the stale files alone (the tree: 500 and more)
    assert all(entry is tree._LISTED for entry in previous.values()) and tree._LISTED == {}


def test_a_write_keeps_whole_only_the_previous_entries_of_files_it_may_prune(repo, monkeypatch):
    """The write reads a stale file's previous entry (its sha256 proves the file is ours to
    prune); of a path the result renders it needs nothing: not kept at all. The stale files
    are still pruned, an edited one still kept."""
    kept: list[dict] = []
    real = tree.read_manifest
    monkeypatch.setattr(tree, "read_manifest", lambda *a, **k: kept.append(real(*a, **k)) or kept[-1])
    edit_yaml(repo / "tenants/hooli.yaml", lambda d: d.__setitem__("services", ["api"]))
    stale = [f"rendered/helm/{env}/hooli/web.yaml" for env in ("dev", "prod")]
    (repo / stale[1]).write_text((repo / stale[1]).read_text() + "# edited by hand\n")
    built, report = pipeline.render_to_disk(repo, full=True)
    assert stale[0] in report.pruned and [k.path for k in report.kept] == [stale[1]]
    (previous,) = kept
    assert previous[stale[0]]["sha256"] and previous[stale[1]]["sha256"]
    assert "rendered/helm/dev/hooli/api.yaml" not in previous and units.unit_path("tenant/hooli") not in previous
    assert set(previous) == {*report.pruned, *(k.path for k in report.kept)} and len(previous) < 50
    assert not any(path in built.result.files for path in previous)


def test_the_guard_forgets_checked_folders_but_never_a_link(repo, tmp_path, monkeypatch):
    """``tree._Guard`` keeps only the last folders it checked (a cold render's 230,000 at
    10,000 tenants were ~30 MB): a folder asked again after it was forgotten is checked
    again, so a link on the way is refused however often it is asked, and each top folder's
    own check (links above the walk, the real path) runs once."""
    from generator.output.listing import list_folders

    monkeypatch.setattr(tree, "_FOLDERS_CHECKED", 2)
    linked = repo / "rendered/helm/stage"
    shutil.rmtree(linked)
    linked.symlink_to(tmp_path)
    guard = tree._Guard(repo, list_folders(repo, tree.OUTPUT_DIRS, cached=False))
    tops: list[str] = []
    real_islink = tree.os.path.islink
    monkeypatch.setattr(tree.os.path, "islink", lambda p: tops.append(p) or real_islink(p))
    safe = ["rendered/helm/dev/acme/api.yaml", "rendered/argocd/dev/x.yaml", "rendered/terraform/dev/y.tf", ".github/workflows/z.yml"]
    for _ in range(3):
        for rel in safe:
            assert guard(rel) == os.path.join(os.fspath(repo), rel)
        with pytest.raises(UsageError, match="rendered/helm/stage is a symbolic link"):
            guard("rendered/helm/stage/acme/api.yaml")
    assert len(guard.checked) <= 2
    assert len(tops) == len(set(tops)) and tops  # each top's path components once
