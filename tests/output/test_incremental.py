"""Incremental render and check (output/units.py): byte-identical to a full render, and
``check --base`` trusts nothing the pull request recorded (docs/incremental.md)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from generator import pipeline
from generator.catalog import snapshot
from generator.catalog.folders import MANIFEST_PATH
from generator.output import checkcache, tree, unit_cache, units
from generator.output.render import EntryField, render
from helpers.baseline import check_base, edit_tenant, forge, rendered_base
from helpers.gitrepo import commit_all
from helpers.unit_cache_frames import cached_units, frames, write_frames

TENANTS = {"acme", "globex", "hooli", "initech", "umbrella"}
HOOLI_FILE = "rendered/helm/prod/hooli/api.yaml"
#: Targets whose per-tenant loops consult `Model.renders` (the others are filtered after).
GUARDED = {"helm", "migrations", "observability", "argocd", "terraform"}


#: The generator's code digest, fixed for these tests: other work on the code while they run
#: must not look like an upgrade (the upgrade tests change it on purpose).
CODE = units.code_digest()


@pytest.fixture(autouse=True)
def _fixed_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(units, "code_digest", lambda: CODE)


@pytest.fixture(scope="module")
def _base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample rendered in full (every unit manifest recorded) and committed, once."""
    return rendered_base(tmp_path_factory.mktemp("incremental") / "repo", CODE)


@pytest.fixture
def repo(_base: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(_base, tmp_path / "repo", symlinks=True))


def _rendered(repo: Path) -> Path:
    """``repo`` is already rendered in full and committed (see ``_base``)."""
    return repo


_edit_tenant = edit_tenant


# --- the render is the same, only cheaper ----------------------------------------------


def test_skipping_tenants_changes_no_other_file(sample):
    """The targets' `Model.renders` guard: rendering one tenant (or none) yields exactly the
    full render's bytes for that tenant's files and for every fleet-wide file."""
    full = render(sample.model, check=False)
    for only in (frozenset({"hooli"}), frozenset()):
        part = render(dataclasses.replace(sample.model, rendering=only), check=False)
        produced = {p: e.get("tenant") for p, e in part.manifest["files"].items()}
        guarded = {e.get("tenant") for e in part.manifest["files"].values() if e["target"] in GUARDED}
        assert guarded - {None} <= only  # the costly targets skip the other tenants' work
        for path in produced:
            assert part.files[path] == full.files[path], path
        expected = {p for p, e in full.manifest["files"].items() if e.get("tenant") is None or e.get("tenant") in only}
        assert set(produced) >= {p for p in expected if not p.startswith("rendered/.companyos")}


def test_one_tenant_edit_renders_that_tenant_only_and_matches_a_full_render(repo):
    _rendered(repo)
    _edit_tenant(repo)
    built, plan = pipeline.build_incremental(repo)
    assert plan.render == {"hooli"} and plan.reasons == {"hooli": "its inputs changed"}
    assert set(plan.reused) == TENANTS - {"hooli"}
    assert built.result.files == pipeline.build(repo).result.files
    # the record's sha256 view: every file's bytes as they hash, in path order
    shas = built.result.shas()
    assert list(shas) == sorted(built.result.files)
    assert dict(shas) == {p: hashlib.sha256(data).hexdigest() for p, data in built.result.files.items()}
    written_by, report = pipeline.render_to_disk(repo)
    owners = {written_by.result.manifest["files"].get(p, {}).get("tenant") for p in report.written}
    assert owners <= {None, "hooli"} and "hooli" in owners
    status = pipeline.check(repo, full=True)[1]
    assert status.clean, status.as_dict()


def test_a_one_tenant_write_reads_as_previous_only_the_manifests_it_replaces(repo, monkeypatch):
    """A reused unit's manifest holds the bytes on disk, and every file it lists is in the new
    result: the write's previous manifest (stale and unmanaged files) leaves it out."""
    _rendered(repo)
    _edit_tenant(repo)
    seen: list[str] = []
    real = tree._add_listed
    monkeypatch.setattr(tree, "_add_listed", lambda out, rel, data, **kw: seen.append(rel) or real(out, rel, data, **kw))
    (repo / "rendered/helm/prod/globex/extra.yaml").write_text("planted: true\n")  # beside a reused unit's files
    _, report = pipeline.render_to_disk(repo)
    assert seen == [units.unit_path(units.GLOBAL), units.unit_path("tenant/hooli")]  # each read and decoded in turn
    assert report.unmanaged == ["rendered/helm/prod/globex/extra.yaml"]


def test_the_assembled_unit_membership_is_the_manifest_entries_grouped_by_unit(repo):
    """The stat record's unit -> files map is taken from assembly; it must be what the
    manifest entries say, for an incremental and a full render."""
    _rendered(repo)
    _edit_tenant(repo)
    for built in (pipeline.build_incremental(repo)[0], pipeline.build(repo)):
        assembled = built.result.members
        assert assembled is not None
        regrouped = units.membership(dataclasses.replace(built.result, members=None))
        assert {u: sorted(f) for u, f in assembled.items()} == {u: sorted(f) for u, f in regrouped.items()}
        assert units.unit_path("tenant/hooli") in assembled


def test_noop_render_reuses_every_tenant_and_writes_nothing(repo):
    _rendered(repo)
    _, plan = pipeline.build_incremental(repo)
    assert plan.render == set() and set(plan.reused) == TENANTS
    _, report = pipeline.render_to_disk(repo)
    assert report.written == [] and report.pruned == []


def test_hand_edited_output_re_renders_its_unit_and_is_restored(repo):
    _rendered(repo)
    original = (repo / HOOLI_FILE).read_bytes()
    (repo / HOOLI_FILE).write_bytes(original + b"# edited\n")
    _, plan = pipeline.build_incremental(repo)
    assert plan.render == {"hooli"} and "sha256" in plan.reasons["hooli"]
    status = pipeline.check(repo, full=False)[1]
    assert status.changed == [HOOLI_FILE]
    pipeline.render_to_disk(repo)
    assert (repo / HOOLI_FILE).read_bytes() == original


def test_removed_tenant_is_pruned_with_its_unit_manifest(repo):
    _rendered(repo)
    (repo / "tenants" / "hooli.yaml").unlink()
    networks = repo / "catalog" / "networks.yaml"  # drop hooli's allocations, as remove-tenant does
    networks.write_text("".join(line for line in networks.read_text().splitlines(keepends=True) if not line.strip().startswith("hooli:")))
    _, report = pipeline.render_to_disk(repo)
    assert units.unit_path("tenant/hooli") in report.pruned
    assert not (repo / HOOLI_FILE).exists()
    assert pipeline.check(repo, full=True)[1].clean


@pytest.mark.parametrize(
    "change",
    ["template", "shared catalog file", "generator code"],
)
def test_a_context_change_re_renders_everything(repo, monkeypatch, change):
    _rendered(repo)
    if change == "template":
        template = repo / "templates" / "helm" / "values.yaml.j2"
        template.write_text(template.read_text() + "{# touched #}\n")
    elif change == "shared catalog file":
        platform = repo / "catalog" / "platform.yaml"
        platform.write_text(platform.read_text() + "\n# touched\n")
    else:
        monkeypatch.setattr(units, "code_digest", lambda: hashlib.sha256(CODE.encode() + b"upgrade").hexdigest())
    built, plan = pipeline.build_incremental(repo)
    assert plan.render == TENANTS and not plan.reused
    assert built.result.files == pipeline.build(repo).result.files
    # nothing is proven, and no set of the fresh paths is built to say so (~58 MB at 10,000 tenants)
    proven = plan.proven(plan.reused_manifests)
    assert not any(path in proven for path in built.result.files) and len(proven.but) == 0
    _, report = pipeline.render_to_disk(repo)
    assert report.written and pipeline.check(repo, full=True)[1].clean


def test_unit_manifests_record_inputs_and_every_file(sample):
    files = sample.result.files
    glob = units.parse_unit(files[units.unit_path(units.GLOBAL)])
    hooli = units.parse_unit(files[units.unit_path("tenant/hooli")])
    assert glob is not None and hooli is not None
    assert HOOLI_FILE in hooli.entries and hooli.shas[HOOLI_FILE] == hashlib.sha256(files[HOOLI_FILE]).hexdigest()
    assert hooli.shas.keys() == hooli.entries.keys() == hooli.sources.keys()
    assert all(e.get("tenant") == "hooli" for e in hooli.entries.values())
    assert all("tenant" not in e for e in glob.entries.values())
    listed = set().union(*(units.parse_unit(files[p]).entries for p in units.unit_paths(files)))  # type: ignore[union-attr]
    assert listed == set(files) - {MANIFEST_PATH} - set(units.unit_paths(files))
    assert MANIFEST_PATH not in files  # no fleet-wide manifest: it would change with every tenant
    manifest = sample.result.manifest["files"]
    assert set(units.unit_paths(files)) <= set(manifest)  # so prune can remove a unit manifest


# --- check --base: the attacks -------------------------------------------------------------


@pytest.mark.parametrize("committed", [False, True], ids=["working tree", "committed"])
def test_check_base_passes_an_honest_one_tenant_change_rendering_only_it(repo, committed):
    _rendered(repo)
    _edit_tenant(repo)
    pipeline.render_to_disk(repo)
    commit_all(repo, "edit hooli")
    _, plan, clean, problems = check_base(repo, "HEAD~1", committed=committed)
    assert clean, problems
    assert plan.render == {"hooli"}
    # the base's units passed the contract check together: only global's and hooli's are judged
    assert plan.previous is not None and {units.parse_unit(u.raw) is not None for u in plan.previous} == {True}
    assert sorted(b'"unit": "tenant/hooli"' in u.raw or b'"unit": "global"' in u.raw for u in plan.previous) == [True, True]


@pytest.mark.parametrize("committed", [False, True], ids=["working tree", "committed"])
@pytest.mark.parametrize("attack", ["file only", "file and manifest entries", "unit manifest only", "unit manifest deleted"])
def test_check_base_refuses_edits_the_pr_recorded(repo, attack, committed):
    _rendered(repo)
    unit = repo / units.unit_path("tenant/hooli")
    original = (repo / HOOLI_FILE).read_bytes()
    evil = original.replace(b"pullPolicy: IfNotPresent", b"pullPolicy: Always", 1)
    assert evil != original
    if attack == "file only":
        (repo / HOOLI_FILE).write_bytes(evil)
    elif attack == "file and manifest entries":
        forge(repo, HOOLI_FILE, evil, "tenant/hooli")
        assert pipeline.check(repo, full=False)[1].clean  # the working tree alone is fooled ...
    elif attack == "unit manifest only":
        assert '"target":"helm"' in unit.read_text()
        unit.write_text(unit.read_text().replace('"target":"helm"', '"target":"helm "', 1))
    else:
        unit.unlink()
    commit_all(repo, attack)
    _, _, clean, problems = check_base(repo, "HEAD~1", committed=committed)  # ... the base commit's record is not
    assert not clean
    expected = {
        "file only": {HOOLI_FILE},
        "file and manifest entries": {HOOLI_FILE, units.unit_path("tenant/hooli")},
        "unit manifest only": {units.unit_path("tenant/hooli")},
        "unit manifest deleted": {units.unit_path("tenant/hooli")},
    }[attack]
    assert expected <= set(problems), problems


@pytest.mark.parametrize("committed", [False, True], ids=["working tree", "committed"])
def test_check_base_with_a_forged_edit_under_a_real_input_change_still_fails(repo, committed):
    """The tenant's input changed (so its unit re-renders): a forged output is compared with the fresh render."""
    _rendered(repo)
    _edit_tenant(repo)
    pipeline.render_to_disk(repo)
    forge(repo, HOOLI_FILE, (repo / HOOLI_FILE).read_bytes() + b"# forged\n", "tenant/hooli")
    commit_all(repo, "edit and forge")
    _, plan, clean, problems = check_base(repo, "HEAD~1", committed=committed)
    assert plan.render == {"hooli"} and not clean and HOOLI_FILE in problems


@pytest.mark.parametrize("committed", [False, True], ids=["working tree", "committed"])
def test_check_base_re_renders_everything_after_a_template_change(repo, committed):
    _rendered(repo)
    template = repo / "templates" / "helm" / "values.yaml.j2"
    template.write_text(template.read_text().replace("\n", "\n# changed\n", 1))
    commit_all(repo, "template only, not re-rendered")
    _, plan, clean, problems = check_base(repo, "HEAD~1", committed=committed)
    assert plan.render == TENANTS and not clean
    assert any(p.startswith("rendered/helm/") for p in problems)
    pipeline.render_to_disk(repo)
    commit_all(repo, "re-rendered")
    _, plan, clean, problems = check_base(repo, "HEAD~2", committed=committed)
    assert plan.render == TENANTS and clean, problems


@pytest.mark.parametrize("committed", [False, True], ids=["working tree", "committed"])
def test_check_base_re_renders_everything_after_a_generator_upgrade(repo, monkeypatch, committed):
    _rendered(repo)
    monkeypatch.setattr(units, "code_digest", lambda: hashlib.sha256(CODE.encode() + b"upgrade").hexdigest())
    _, plan, clean, problems = check_base(repo, committed=committed)
    assert plan.render == TENANTS and not clean
    assert units.unit_path(units.GLOBAL) in problems  # the recorded context is out of date


def test_cli_check_base_and_render_full(repo, companyos):
    _rendered(repo)
    assert companyos("check", "--base", "HEAD", cwd=repo).code == 0
    (repo / HOOLI_FILE).write_bytes((repo / HOOLI_FILE).read_bytes() + b"# x\n")
    commit_all(repo, "edit output")
    result = companyos("check", "--base", "HEAD~1", cwd=repo)
    assert result.code == 1 and HOOLI_FILE in result.out
    assert companyos("render", "--full", cwd=repo).code == 0
    assert companyos("check", "--base", "HEAD~1", cwd=repo).code == 0


# --- one manifest per unit: nothing fleet-wide changes when a tenant is added ---------------


def test_fleet_wide_files_name_the_tenant_files_as_one_pattern(sample):
    """A fleet-wide file's header and entry say ``tenants/*.yaml``, not one path per tenant,
    so adding a tenant does not change them; a tenant's files still name its own file."""
    files, entries = sample.result.files, sample.result.manifest["files"]
    shared = {p: e for p, e in entries.items() if "tenant" not in e and e["target"] != "units"}
    assert not [p for p, e in shared.items() if any(s.startswith("tenants/") and s != "tenants/*.yaml" for s in e["sources"])]
    globbed = [p for p, e in shared.items() if "tenants/*.yaml" in e["sources"]]
    assert globbed and all(b"Sources: " in files[p] and b"tenants/*.yaml" in files[p] for p in globbed if p.endswith(".tf"))
    assert "tenants/hooli.yaml" in entries[HOOLI_FILE]["sources"]


def test_adding_a_tenant_leaves_the_context_and_other_units_alone(repo):
    """The new tenant's own file and its new-tenant answers are its inputs, not the context."""
    _rendered(repo)
    before = pipeline.build_incremental(repo)[0].result.files
    (repo / "tenants" / "zeta.yaml").write_text((repo / "tenants" / "globex.yaml").read_text().replace("globex", "zeta"))
    (repo / "tenants" / ".copier-answers").mkdir(exist_ok=True)
    (repo / "tenants" / ".copier-answers" / "zeta.yml").write_text("_commit: v1\n")
    built, plan = pipeline.build_incremental(repo)
    assert plan.render == {"zeta"} and set(plan.reused) == TENANTS
    after = built.result.files
    assert units.parse_unit(after[units.unit_path(units.GLOBAL)]).inputs == units.parse_unit(before[units.unit_path(units.GLOBAL)]).inputs  # type: ignore[union-attr]
    for name in TENANTS:
        assert after[units.unit_path(f"tenant/{name}")] == before[units.unit_path(f"tenant/{name}")]
    assert units.unit_path("tenant/zeta") in after and MANIFEST_PATH not in after


def test_a_tree_rendered_before_units_is_read_then_its_manifest_pruned(repo, sample):
    """An old tree has one fleet-wide manifest and no unit manifests: it is what prune reads,
    and the next render replaces it by the unit manifests."""
    _rendered(repo)
    shutil.rmtree(repo / units.UNITS_DIR)
    manifest = sample.result.manifest  # as render wrote it before units: every file, one manifest
    listed = {p: e for p, e in manifest["files"].items() if not p.startswith(units.UNITS_DIR + "/")}
    legacy = json.dumps({**manifest, "files": listed}, indent=2, sort_keys=True).encode()
    (repo / MANIFEST_PATH).write_bytes(legacy)
    listed = tree.read_manifest(repo)
    assert HOOLI_FILE in listed and MANIFEST_PATH in listed
    (repo / "rendered/helm/dev/hooli/notes.yaml").write_text("mine\n")  # never listed: never pruned
    _, report = pipeline.render_to_disk(repo)
    assert MANIFEST_PATH in report.pruned and not (repo / MANIFEST_PATH).exists()
    assert (repo / units.unit_path(units.GLOBAL)).exists() and (repo / "rendered/helm/dev/hooli/notes.yaml").exists()
    (repo / "rendered/helm/dev/hooli/notes.yaml").unlink()
    assert pipeline.check(repo, full=True)[1].clean


# --- consumer-limit facts are recorded per file: a reused file is judged without being read ---


def test_reused_files_are_judged_from_their_recorded_limit_facts(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from generator.output import limits

    _edit_tenant(repo)  # hooli renders, the other tenants are reused
    examined: list[str] = []
    real = limits.facts
    monkeypatch.setattr(limits, "facts", lambda path, data: examined.append(path) or real(path, data))
    built, plan = pipeline.build_incremental(repo)
    assert plan.render == {"hooli"} and examined
    reused = {p for unit in plan.reused.values() for p in unit.entries}
    assert not reused & set(examined)  # nothing of a reused unit was examined again
    # ...and what they recorded is what examining them finds
    for unit in plan.reused.values():
        for path, entry in unit.entries.items():
            assert limits.record(real(path, built.result.files[path])) == entry.get("limits"), path


def test_a_reused_files_sha256_and_sources_are_read_from_its_unit_only_when_asked(repo: Path) -> None:
    """Reused entries are held without their sources and sha256s (most of a decoded entry's
    memory); the record's and the limit check's views read a reused file's from its unit's
    manifest, exactly as a full render has them."""
    _edit_tenant(repo)
    built, plan = pipeline.build_incremental(repo)
    entries = built.result.manifest["files"]
    reused = [p for unit in plan.reused.values() for p in unit.entries]
    assert reused and not [p for p in reused if "sources" in entries[p] or "sha256" in entries[p]]
    full = pipeline.build(repo).result.manifest["files"]
    sources = EntryField(entries, "sources", recorded=units.ReusedFields(plan.reused))
    assert list(sources) == list(entries)
    assert {p: list(sources[p]) for p in full} == {p: e["sources"] for p, e in full.items()}
    assert dict(built.result.shas()) == {p: e["sha256"] for p, e in full.items()}


def test_reused_entries_share_their_target_environment_and_tenant_strings(repo: Path) -> None:
    """800,000 reused entries hold one string per target, environment and tenant, and one
    dict per kind of entry, not one each; a target or environment this catalog does not
    have makes no unit of it."""
    _edit_tenant(repo)
    _, plan = pipeline.build_incremental(repo)
    entries = [e for unit in plan.reused.values() for e in unit.entries.values()]
    for key in ("target", "environment", "tenant"):
        values = [e[key] for e in entries if key in e]
        assert len(set(values)) > 1 and len({id(v) for v in values}) == len(set(values)), key
    # entries equal field for field are one dict (a handful per tenant), and still each file's own fields
    assert len({id(e) for e in entries}) < len(entries) / 2
    full = pipeline.build(repo).result.manifest["files"]
    for unit in plan.reused.values():
        for path, entry in unit.entries.items():
            assert entry == {k: v for k, v in full[path].items() if k not in ("sha256", "sources")}, path
    path = repo / units.unit_path("tenant/globex")
    for old, new in (('"environment":"dev"', '"environment":"qa"'), ('"target":"helm"', '"target":"kustomize"')):
        original = path.read_text()
        assert old in original
        path.write_text(original.replace(old, new, 1))
        _, plan = pipeline.build_incremental(repo)
        assert plan.reasons["globex"] == "no recorded unit", new
        path.write_text(original)


def test_a_breach_a_reused_unit_recorded_still_fails_the_render(repo: Path) -> None:
    """The recorded facts are judged like fresh ones (a unit's manifest is trusted for reuse
    exactly as its contracts are; ``check --base`` compares it with the base's)."""
    import json

    from generator.errors import CatalogErrors

    unit = repo / units.unit_path("tenant/acme")
    data = json.loads(unit.read_text())
    path = next(p for p, e in data["files"].items() if p.startswith("rendered/argocd/"))
    data["files"][path]["limits"] = {"breaches": [["", "acme", "planted: name is 64 characters", False]]}
    unit.write_text(json.dumps(data))
    with pytest.raises(CatalogErrors) as caught:
        pipeline.build_incremental(repo)
    planted = [e for e in caught.value.errors if "planted: name is 64 characters" in e.message]
    # blamed on the catalog file among the reused file's sources (read from its unit's manifest only now)
    assert planted and {e.location.path for e in planted} == {"tenants/acme.yaml"}, planted


# --- check --base: what git proves unchanged is not read ----------------------------------------

GLOBEX_FILE = "rendered/helm/prod/globex/api.yaml"


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every working-tree file the unit plan reads."""
    seen: list[str] = []
    real = units.read_file
    monkeypatch.setattr(units, "read_file", lambda path, *a, **k: seen.append(str(path)) or real(path, *a, **k))
    return seen


def test_check_base_reads_no_file_git_proves_unchanged(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _edit_tenant(repo)
    pipeline.render_to_disk(repo)
    commit_all(repo, "edit hooli")
    seen = _reads(monkeypatch)
    compared: list[str] = []  # what the comparison with the tree reads (tree.status)
    real = tree.read_file
    monkeypatch.setattr(tree, "read_file", lambda path, *a, **k: compared.append(str(path)) or real(path, *a, **k))
    _, plan, clean, problems = check_base(repo, "HEAD~1")
    assert clean, problems
    assert plan.render == {"hooli"} and plan.left and not plan.hashed
    assert not [p for p in seen if "/rendered/" in p], seen[:5]
    # neither the reused units' files nor their manifests (git proves them the base's) are read
    assert not [p for p in compared if "/.companyos-units/tenant-" in p and "hooli" not in p], compared
    assert not [p for p in compared if "/rendered/helm/" in p and "hooli" not in p], compared


def test_check_base_hashes_no_manifest_it_leaves_on_disk(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reused unit's manifest left on disk is the base's blob, read again by its id: its
    sha256 (its entry's) is taken only when asked, and is its bytes'."""
    _edit_tenant(repo)
    pipeline.render_to_disk(repo)
    commit_all(repo, "edit hooli")
    hashed: list[str] = []
    real = units._sha
    monkeypatch.setattr(units, "_sha", lambda data: hashed.append(real(data)) or hashed[-1])
    with snapshot.at(repo, "HEAD~1") as base:
        built, plan = pipeline.build_incremental(repo, base)
        left = {units.unit_path(f"tenant/{name}") for name in plan.left}
        assert left and "hooli" not in plan.left
        on_disk = {path: hashlib.sha256((repo / path).read_bytes()).hexdigest() for path in sorted(left)}
        assert not set(on_disk.values()) & set(hashed)
        entries = built.result.manifest["files"]
        assert {path: entries[path]["sha256"] for path in on_disk} == on_disk  # asked: hashed now
        assert {path: dict(entries[path]) for path in on_disk} == {
            path: {"sha256": sha, "sources": [], "target": "units", "tenant": units.unit_named(path).removeprefix("tenant/")}
            for path, sha in on_disk.items()
        }
    assert set(on_disk.values()) <= set(hashed)


def test_check_base_plan_reads_git_proven_manifests_unhashed_and_a_moved_one_from_git(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan's one read of a unit manifest git proves is the base's takes the working
    tree's bytes without hashing them (git's proof vouches for them, as for the files they
    list); a manifest git lists as changed is read from the base's blob, never the working
    tree's bytes."""
    _edit_tenant(repo)
    pipeline.render_to_disk(repo)
    commit_all(repo, "edit hooli")
    moved = units.unit_path("tenant/globex")
    forged = (repo / moved).read_bytes() + b"\n"  # still a valid manifest, other bytes
    (repo / moved).write_bytes(forged)
    blobs: list[bytes] = []
    real_digest = snapshot.git_blob_digest
    monkeypatch.setattr(snapshot, "git_blob_digest", lambda data: blobs.append(real_digest(data)) or blobs[-1])
    parsed: list[bytes | None] = []
    real_parse = units.parse_unit
    monkeypatch.setattr(units, "parse_unit", lambda raw, *a: parsed.append(raw) or real_parse(raw, *a))
    with snapshot.at(repo, "HEAD~1") as base:
        _, plan = pipeline.build_incremental(repo, base)
    proven = {units.unit_path(f"tenant/{name}") for name in plan.left}
    assert proven and moved not in proven and "hooli" in plan.render
    on_disk = {path: (repo / path).read_bytes() for path in proven}
    assert not {real_digest(data) for data in on_disk.values()} & set(blobs)  # read, never hashed
    assert set(on_disk.values()) <= set(parsed)
    assert forged not in parsed and forged[:-1] in parsed  # the base's blob, not the working tree's bytes


def test_a_manifest_changed_after_gits_answer_is_read_again_from_its_blob(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Git answered "nothing moved", then the working tree's manifest changed (a race): the
    plan's one read takes the working tree's bytes (git's answer vouches for them, as for the
    files they list), but any later read (``Baseline.file``: a let-go manifest read again)
    checks them against the base's blob id and reads git's object instead."""
    rel = units.unit_path("tenant/globex")
    committed = (repo / rel).read_bytes()
    with snapshot.at(repo, "HEAD") as base:
        monkeypatch.setattr(snapshot.Baseline, "_moved", frozenset())  # git's answer, taken before the change
        (repo / rel).write_bytes(committed + b"\n")
        assert base.proven_output(rel) == committed + b"\n"
        assert base.file(rel) == committed
        assert units.BaseCommit(base)("tenant/globex") == committed


def test_check_base_takes_a_git_proven_manifest_as_a_render_last_decoded_it(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The working tree's ``check --base``: a unit manifest git proves the base's is taken from
    the unit cache by its stamp, not read at all; one git lists as changed is read from the
    base's blob even when the cache holds an entry with its stamp now; ``--committed`` (HEAD's
    commit, whatever the working tree holds) never opens the cache."""
    monkeypatch.setattr(checkcache, "RACY_NS", 0)
    monkeypatch.setattr(unit_cache, "RACY_NS", 0)
    _edit_tenant(repo)
    pipeline.render_to_disk(repo)  # the reused units are kept in the cache
    others = TENANTS - {"hooli"}
    assert set(cached_units(repo)) == others
    commit_all(repo, "edit hooli")
    moved = units.unit_path("tenant/globex")
    (repo / moved).write_bytes((repo / moved).read_bytes() + b"\n")  # still a valid manifest, other bytes
    kept = frames(repo)
    row = next(r for frame in kept[1:] for r in frame if r[0] == "globex")
    row[1] = list(unit_cache.stamp(repo, moved) or ())  # an entry with the changed manifest's stamp ...
    row[4][0]["root"] = "planted"  # ... saying what no manifest says
    write_frames(repo, kept)
    parsed: list[bytes | None] = []
    real_parse = units.parse_unit
    monkeypatch.setattr(units, "parse_unit", lambda raw, *a: parsed.append(raw) or real_parse(raw, *a))
    with snapshot.at(repo, "HEAD~1") as base:
        built, plan = pipeline.build_incremental(repo, base)
    assert plan.left == others - {"globex"} and "globex" in plan.hashed  # the proven units as last decoded ...
    read = {json.loads(raw)["unit"] for raw in parsed if raw is not None}
    assert read == {"global", "tenant/hooli", "tenant/globex"}, read  # ... but globex's, read from the base's blob
    assert not any(entry.get("root") == "planted" for entry in built.result.manifest["files"].values())
    assert dict(built.result.files) == dict(pipeline.build(repo).result.files)
    monkeypatch.setattr(unit_cache, "Reader", lambda *a, **k: (_ for _ in ()).throw(AssertionError("read the unit cache")))
    (repo / moved).write_bytes((repo / moved).read_bytes()[:-1])
    assert check_base(repo, "HEAD~1", committed=True)[2]


def test_check_base_parses_only_the_catalog_files_changed_since_the_last_clean_run(repo: Path) -> None:
    """The working tree's ``check --base`` reads the catalog through the last clean run's
    parses (each reused only for the same bytes and stamp): an edit made since is parsed and
    caught. ``--committed`` parses every file afresh and keeps nothing."""
    assert pipeline.check(repo, use_cache=False)[1].clean  # a clean run: its parses are kept
    commit_all(repo, "same as the base")
    _edit_tenant(repo)  # not rendered
    with snapshot.at(repo, "HEAD~1") as base:
        built, plan = pipeline.build_incremental(repo, base)
        status = pipeline.check(repo, full=False, base=base)[1]
    parses = built.model.catalog.parses
    assert parses is not None and parses.fresh == ["tenants/hooli.yaml"]
    assert plan.render == {"hooli"} and "rendered/terraform/prod/tenant-hooli/main.tf" in status.changed
    commit_all(repo, "edit hooli")  # --committed checks HEAD's catalog
    with snapshot.at(repo, "HEAD~1", head=True) as base:
        built, plan = pipeline.build_incremental(repo, base)
    assert built.model.catalog.parses is None and plan.render == {"hooli"}


def test_check_base_reads_and_catches_a_working_tree_edit_git_sees(repo: Path) -> None:
    commit_all(repo, "same as the base")
    original = (repo / GLOBEX_FILE).read_bytes()
    (repo / GLOBEX_FILE).write_bytes(original.replace(b"pullPolicy: IfNotPresent", b"pullPolicy: Always", 1))
    _, plan, clean, problems = check_base(repo, "HEAD~1")
    assert not clean and GLOBEX_FILE in problems
    assert "globex" in plan.render and plan.reasons["globex"] == "a file differs from its recorded sha256"


def test_check_base_trusts_git_only_while_the_attributes_are_the_bases(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / ".gitattributes").write_text("*.yaml text eol=crlf\n")  # the checkout's bytes may then differ from the blobs
    commit_all(repo, "attributes")
    seen = _reads(monkeypatch)
    _, plan, _, _ = check_base(repo, "HEAD~1")
    assert not plan.left
    assert any(p.endswith(GLOBEX_FILE) for p in seen)


def _mangled(raw: bytes, how: str) -> bytes:
    """The sample's hooli unit manifest with one thing wrong in it."""
    import json

    data = json.loads(raw)
    entry = next(e for e in data["files"].values() if "contracts" in e)
    if how == "a row too short":
        entry["contracts"]["consumes"][0] = entry["contracts"]["consumes"][0][:4]
    elif how == "a list inside a row":
        entry["contracts"]["provides"][0][1] = ["not", "a", "name"]
    elif how == "a map inside a row":
        entry["contracts"]["consumes"][0][3] = {"detail": "x"}
    elif how == "sources that are not a list":
        entry["sources"] = "tenants/hooli.yaml"
    elif how == "no sha256":
        del entry["sha256"]
    elif how == "a place that is not a line":
        data["places"][0][1] = "one"
    elif how == "another version":
        data["version"] = units.UNITS_VERSION + 1
    elif how == "not json":
        return raw[: len(raw) // 2]
    return json.dumps(data).encode()


#: Damage found when the sha256s, sources, places or contract rows are first decoded.
_DECODED_ON_FIRST_USE = (
    "a row too short",
    "a list inside a row",
    "a map inside a row",
    "sources that are not a list",
    "no sha256",
    "a place that is not a line",
)


@pytest.mark.parametrize("how", [*_DECODED_ON_FIRST_USE, "another version", "not json"])
def test_a_malformed_unit_manifest_is_not_a_unit_and_its_tenant_renders_again(repo, how):
    path = repo / units.unit_path("tenant/hooli")
    raw = path.read_bytes()
    assert units.parse_unit(raw) is not None and units.parse_unit(raw).decodable()
    # sha256s, sources and contract rows are decoded on first use: a unit nothing vouches for is asked before reuse
    rows = how in _DECODED_ON_FIRST_USE
    mangled = units.parse_unit(_mangled(raw, how))
    assert (mangled is not None and not mangled.decodable()) if rows else mangled is None
    path.write_bytes(_mangled(raw, how))
    _, plan = pipeline.build_incremental(repo)
    assert "hooli" in plan.render
    assert plan.reasons["hooli"] == ("its manifest's sha256s, sources, places or contract rows are damaged" if rows else "no recorded unit")
    pipeline.render_to_disk(repo)
    assert path.read_bytes() == raw


def test_unit_manifests_written_just_before_the_record_are_known_by_their_bytes(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit written within the racy window of the verified-clean record has no stat digest;
    the record keeps its sha256, and the next run still knows it as the verified fleet's (two
    edits in a row used to judge the whole fleet's contracts every other run)."""
    monkeypatch.setattr(checkcache, "RACY_NS", 10**18)  # every file counts as just written
    pipeline.render_to_disk(repo)  # a copied tree: nothing vouched by stat, every unit read, then recorded
    record = checkcache._read(repo)
    assert not record.get("units") and units.unit_path("tenant/globex") in record["racy"]
    _edit_tenant(repo)
    _, plan = pipeline.build_incremental(repo)
    assert plan.render == {"hooli"} and plan.previous is not None
    assert sorted(b'"unit": "tenant/hooli"' in u.raw or b'"unit": "global"' in u.raw for u in plan.previous) == [True, True]
    # a manifest whose bytes are not the recorded ones is not the verified fleet's: judge everything
    other = repo / units.unit_path("tenant/globex")
    other.write_bytes(other.read_bytes().replace(b'"version": ', b'"version":  ', 1))
    _, plan = pipeline.build_incremental(repo)
    assert plan.render == {"hooli"} and "globex" in plan.reused and plan.previous is None


# --- the reused units partition the files: no file is listed by two units ------------------


def _list_also(repo: Path, unit: str, path: str, owner: str) -> None:
    """Add ``owner``'s entry of ``path`` (its real sha256) to ``unit``'s manifest, as ``unit``'s."""
    import json

    theirs = json.loads((repo / units.unit_path(owner)).read_text())["files"][path]
    manifest_path = repo / units.unit_path(unit)
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][path] = {**theirs, "tenant": unit.removeprefix("tenant/")}
    if owner == units.GLOBAL:
        manifest["files"][path].pop("environment", None)
    manifest_path.write_text(json.dumps(manifest))


def test_a_unit_listing_a_file_another_reused_unit_lists_renders_again(repo: Path) -> None:
    """globex's manifest also lists one of acme's files (hashes and all): reusing both would
    list that file twice, and the stat record's sums rely on each file having one unit."""
    taken = next(p for p in units.parse_unit((repo / units.unit_path("tenant/acme")).read_bytes()).entries)
    _list_also(repo, "tenant/globex", taken, "tenant/acme")
    _, plan = pipeline.build_incremental(repo)
    assert "acme" in plan.reused and plan.reasons["globex"] == "its manifest lists another tenant's file"
    members = units.membership(pipeline.build_incremental(repo)[0].result)
    listed = [p for paths in members.values() for p in paths]
    assert len(listed) == len(set(listed))
    pipeline.render_to_disk(repo)
    assert pipeline.check(repo, full=True)[1].clean


def test_a_reused_unit_listing_a_file_rendered_afresh_is_refused(repo: Path, companyos) -> None:
    """hooli's manifest also lists a fleet-wide file, which the global unit renders every run:
    refused with the unit and the file named (exit 2), nothing written."""
    shared = next(p for p in units.parse_unit((repo / units.unit_path(units.GLOBAL)).read_bytes()).entries if p.startswith("rendered/"))
    _list_also(repo, "tenant/hooli", shared, units.GLOBAL)
    before = {p: p.read_bytes() for p in (repo / "rendered").rglob("*") if p.is_file()}
    result = companyos("render", cwd=repo)
    assert result.code == 2, result.err
    assert f"{units.unit_path('tenant/hooli')} lists {shared}, which {units.unit_path(units.GLOBAL)} renders" in result.err
    assert {p: p.read_bytes() for p in (repo / "rendered").rglob("*") if p.is_file()} == before


def test_the_files_outside_covered_units_are_found_with_or_without_a_partition() -> None:
    """``checkcache._rest``: the outputs no covered unit lists, by the other units' lists when
    they list every output once, else by a set (here a file no unit lists)."""
    outputs = {"a": "1", "b": "2", "c": "3", "u1": "4", "u2": "5"}
    parted = {"u1": ["u1", "a", "b"], "u2": ["u2", "c"]}
    assert sorted(checkcache._rest(outputs, parted, {"u1"})) == ["c", "u2"]
    assert checkcache._rest(outputs, parted, {"u1", "u2"}) == []
    partial = {"u1": ["u1", "a"], "u2": ["u2", "c"]}  # b is listed by no unit
    assert sorted(checkcache._rest(outputs, partial, {"u1"})) == ["b", "c", "u2"]
    assert checkcache._rest(outputs, partial, {"u1", "u2"}) == ["b"]


def test_check_base_indexes_only_the_unit_manifests_and_a_file_gone_from_both_sides_is_missing(repo: Path) -> None:
    """The base is not indexed file by file (its unit manifests list its files): a unit whose
    files git proves unmoved is vouched for without asking the base for each. A file its
    manifest lists that is in neither the base's tree nor the working tree (a base never
    checked) is not proven present by that: the walk of the tree finds it missing."""
    gone = repo / GLOBEX_FILE
    gone.unlink()
    commit_all(repo, "a base whose manifest lists a file its tree lacks")
    with snapshot.at(repo, "HEAD") as base:
        assert all(p.startswith("rendered/.companyos-units/") for p in base.manifests) and len(base.manifests) == len(TENANTS) + 1
        assert base.vouch(units.unit_path("tenant/globex"), [GLOBEX_FILE]) and base.blob_ids([GLOBEX_FILE]) == {}
    _, plan, clean, problems = check_base(repo, "HEAD")
    assert "globex" in plan.reused and not clean and problems == [GLOBEX_FILE]


def test_a_base_listing_stopped_early_leaves_no_git_waiting(repo: Path) -> None:
    """``git.tree_entries`` streams ``git ls-tree``; a reader that takes one record and stops
    must not leave git blocked on a full pipe (the test would hang)."""
    import git as gitpython

    from generator.git import tree_entries, tree_paths

    handle = gitpython.Repo(repo)
    many = tree_entries(handle, "HEAD", "rendered")
    first = next(many)
    many.close()
    assert first[0].startswith("rendered/") and next(tree_paths(handle, "HEAD", "rendered")).startswith("rendered/")
    assert len(list(tree_entries(handle, "HEAD", "rendered"))) == len(list(tree_paths(handle, "HEAD", "rendered"))) > 500


def test_a_hashed_units_files_are_checked_not_held_and_read_again_when_asked(repo: Path) -> None:
    """Without the stat record (a fresh clone), each reused unit's files are read and hashed
    under the lock, and their bytes let go: the result reads one again only when asked, and
    a file changed on disk is re-rendered, not trusted."""
    _edit_tenant(repo)
    shutil.rmtree(repo / checkcache.CACHE_DIR, ignore_errors=True)
    built, plan = pipeline.build_incremental(repo)
    assert plan.render == {"hooli"} and "globex" in plan.hashed and not plan.left
    helm = "rendered/helm/dev/globex/api.yaml"
    assert helm in built.result.files and helm not in built.result.files.held  # type: ignore[attr-defined]
    assert built.result.files[helm] == (repo / helm).read_bytes()
    assert plan.reused["globex"]._shas is None  # decoded to check, then dropped
    assert built.result.manifest["files"][helm].get("sha256") is None
    assert built.result.shas()[helm] == hashlib.sha256((repo / helm).read_bytes()).hexdigest()  # decoded again
    assert dict(built.result.files) == dict(pipeline.build(repo).result.files)
    shas = built.result.shas()
    assert all(len(shas[path]) == 64 for path in built.result.files)  # every reused unit's asked in turn ...
    assert sum(unit._shas is not None for unit in plan.reused.values()) <= 1  # ... and one held at a time
    # the unit's manifest, read from this tree, stays on disk too (at 10,000 tenants ~760 MB held)
    manifest = units.unit_path("tenant/globex")
    assert plan.parsed[manifest] is None and not plan.reused["globex"].held
    assert manifest not in built.result.files.held and built.result.files[manifest] == (repo / manifest).read_bytes()  # type: ignore[attr-defined]
    # recorded units read from elsewhere (the base commit, for check --base) are held as read
    model = pipeline.resolve_only(repo)
    elsewhere = units.plan(repo, model, units.digests(repo, model), lambda unit: (repo / units.unit_path(unit)).read_bytes())
    assert "globex" in elsewhere.hashed and elsewhere.reused["globex"].held and elsewhere.parsed[manifest] is not None
    (repo / helm).write_bytes((repo / helm).read_bytes() + b"# edited\n")
    _, again = pipeline.build_incremental(repo)
    assert "globex" in again.render and again.reasons["globex"] == "a file differs from its recorded sha256"


def test_a_whole_file_is_read_with_a_buffer_of_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``tree.read_file`` asks for the file's size and one byte more, not a fixed 1 MiB (that
    buffer, shrunk, fragmented the heap: ~350 MB over 80,000 files); a file that grows
    while read, an empty one and a pipe still read whole."""
    import os
    import threading

    asked: list[int] = []
    real = os.read
    monkeypatch.setattr(tree.os, "read", lambda fd, n: asked.append(n) or real(fd, n))
    small = tmp_path / "small"
    small.write_bytes(b"x" * 5000)
    assert tree.read_file(small) == b"x" * 5000 and asked == [5001]
    (tmp_path / "empty").write_bytes(b"")
    assert tree.read_file(tmp_path / "empty") == b""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(b"y" * 200_000))
    writer.start()
    assert tree.read_file(fifo) == b"y" * 200_000
    writer.join()
    assert tree.read_file(tmp_path / "missing") is None and tree.read_file(tmp_path) is None


# --- a folder's files counted, not tested one by one (tree._status) ------------------------------

HOOLI_STRAY = "rendered/helm/prod/hooli/stray.yaml"


def _swapped(repo: Path) -> None:
    """hooli's ``api.yaml`` gone and a stray file beside it: the folder holds as many files as
    before, so only the proofs that its verified files are on disk tell the two apart."""
    (repo / HOOLI_FILE).unlink()
    (repo / HOOLI_STRAY).write_text("kind: ConfigMap\n")


@pytest.mark.parametrize("how", ["check, stat record", "check, no cache", "check --base", "render"])
def test_a_verified_file_swapped_for_a_stray_in_its_folder_is_found(repo: Path, how: str) -> None:
    """``tree._status`` counts a folder's files when it holds as many as verified paths (none
    made afresh, no link): sound only because every verified path is proven a file on disk
    (git, the stat record, or read under the lock). A swap keeps the count: the proofs must
    drop the unit, whose file is then missing and the stray unmanaged."""
    _rendered(repo)
    if how == "check, stat record":
        pipeline.check(repo, use_cache=True, full=False)  # the record, with hooli's stat sum
    _swapped(repo)
    if how == "render":
        _, report = pipeline.render_to_disk(repo)
        assert report.unmanaged == [HOOLI_STRAY] and (repo / HOOLI_FILE).is_file()
        return
    if how == "check --base":
        _, _, clean, problems = check_base(repo, "HEAD")
        assert not clean and sorted(problems) == [HOOLI_FILE, HOOLI_STRAY]
        return
    status = pipeline.check(repo, use_cache=how == "check, stat record", full=False)[1]
    assert status.missing == [HOOLI_FILE] and status.unmanaged == [HOOLI_STRAY]


def test_a_folder_of_verified_files_is_counted_without_making_its_paths(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The no-op's comparison makes paths only for the folders it must look into: one with a
    stray. A folder of files made afresh (the global unit renders every run) is counted too."""
    from generator.output import listing

    _rendered(repo)
    (repo / HOOLI_STRAY).write_text("kind: ConfigMap\n")
    looked: list[str] = []
    joined = listing._joined
    monkeypatch.setattr(listing, "_joined", lambda prefix, names: looked.append(prefix) or joined(prefix, names))
    status = pipeline.check(repo, full=False)[1]
    assert status.unmanaged == [HOOLI_STRAY] and not status.changed and not status.missing
    assert "rendered/helm/prod/hooli/" in looked and "rendered/helm/prod/globex/" not in looked
    assert "rendered/terraform/prod/shared/" not in looked  # the global unit's, rendered afresh
    assert len(looked) < len({p.rpartition("/")[0] for p in tree.files_under(repo, ("rendered",))}) / 2
