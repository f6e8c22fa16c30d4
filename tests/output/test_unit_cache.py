"""The unit cache (``output.unit_cache``, ``.companyos-cache/units``): an edit after an edit
takes each vouched unit as last decoded instead of reading its manifest, renders the same
bytes, and never uses an entry whose manifest stamp, context or settledness does not match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from generator import pipeline
from generator.output import checkcache, tree, unit_cache, units
from helpers.catalog_edit import edit_yaml
from helpers.unit_cache_frames import cached_units, frames, write_frames


@pytest.fixture
def settled(repo: Path, companyos, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A rendered copy whose files all count as settled, recorded clean by a full check."""
    monkeypatch.setattr(checkcache, "RACY_NS", 0)
    monkeypatch.setattr(unit_cache, "RACY_NS", 0)
    assert companyos("render", cwd=repo).code == 0
    assert pipeline.check(repo, use_cache=False)[1].clean
    (repo / unit_cache.CACHE_PATH).unlink(missing_ok=True)  # the render may have kept units: start with none
    return repo


def _edit(repo: Path, owner: str) -> tuple[pipeline.Build, list[str]]:
    """Edit hooli's owner and render, listing the unit manifests the run read."""
    edit_yaml(repo / "tenants/hooli.yaml", lambda data: data.update(owner=owner))
    seen: list[str] = []
    real = tree.read_file

    def reading(path: Any, *args: Any, **kwargs: Any) -> bytes | None:
        seen.append(str(path))
        return real(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(units, "read_file", reading)
        patch.setattr(tree, "read_file", reading)
        built, _ = pipeline.render_to_disk(repo)
    manifests = [p for p in seen if "/.companyos-units/" in p and not p.endswith(("/global.json", "/tenant-hooli.json"))]
    return built, manifests


def test_an_edit_after_an_edit_reads_no_vouched_units_manifest_and_renders_the_same(settled: Path) -> None:
    _, first = _edit(settled, "platform-b@example.com")
    assert first, "the first edit decodes the manifests (nothing cached yet)"
    assert set(cached_units(settled)) == {"acme", "globex", "initech", "umbrella"}  # hooli was rendered: not kept
    built, second = _edit(settled, "platform-c@example.com")
    assert second == [], f"read {second}"
    assert dict(built.result.files) == dict(pipeline.build(settled).result.files)
    assert pipeline.check(settled, full=True)[1].clean


def test_a_cached_unit_is_used_only_while_its_manifests_stamp_is_the_kept_one(settled: Path) -> None:
    _edit(settled, "platform-b@example.com")
    kept = frames(settled)
    row = next(r for frame in kept[1:] for r in frame if r[0] == "globex")
    row[4][0]["root"] = "planted"  # a kept entry no manifest says
    write_frames(settled, kept)
    built, read = _edit(settled, "platform-c@example.com")
    assert read == [] and any(e.get("root") == "planted" for e in built.result.manifest["files"].values())  # the plant is live
    row[1][2] += 1  # the same entry, kept for another ctime: the manifest no longer has that stamp
    write_frames(settled, kept)
    built, read = _edit(settled, "platform-d@example.com")
    assert any(p.endswith("/tenant-globex.json") for p in read)
    assert not any(e.get("root") == "planted" for e in built.result.manifest["files"].values())


def test_another_context_or_a_damaged_cache_is_not_used(settled: Path) -> None:
    _edit(settled, "platform-b@example.com")
    kept = frames(settled)
    kept[0][1] = "another context"
    write_frames(settled, kept)
    _, read = _edit(settled, "platform-c@example.com")
    assert len(read) == 4
    for damaged in (b"\x00\x00\x00\x05junk!", b"", b"\xff"):
        (settled / unit_cache.CACHE_PATH).write_bytes(damaged)
        built, read = _edit(settled, f"platform-{len(damaged)}@example.com")
        assert len(read) == 4 and dict(built.result.files) == dict(pipeline.build(settled).result.files)


def test_a_manifest_read_within_the_racy_window_is_not_kept(settled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unit_cache, "RACY_NS", 10**18)  # every manifest counts as just changed
    _edit(settled, "platform-b@example.com")
    assert not (settled / unit_cache.CACHE_PATH).exists()


def test_full_runs_neither_read_nor_write_it(settled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unit_cache, "Reader", lambda *a, **k: (_ for _ in ()).throw(AssertionError("read the unit cache")))
    assert pipeline.check(settled, full=True)[1].clean
    pipeline.render_to_disk(settled, full=True)
    assert not (settled / unit_cache.CACHE_PATH).exists()
