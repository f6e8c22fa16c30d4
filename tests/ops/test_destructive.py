"""``companyos check --base REF``: a change that destroys something fails unless it is
acknowledged, and the message lists what would be destroyed."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator import pipeline
from generator.catalog import snapshot as snapshot_module
from generator.ops import destructive
from generator.output.tree import read_manifest
from helpers.catalog_edit import edit_yaml, override
from helpers.gitrepo import commit_all, private_copy, rendered_and_committed
from helpers.repo import snapshot


@pytest.fixture(scope="session")
def based_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Once per session: a scratch repository rendered and committed as the base."""
    return rendered_and_committed(tmp_path_factory.mktemp("based") / "repo")


@pytest.fixture
def based(based_template: Path, tmp_path: Path) -> Path:
    """A private copy (git history included) of :func:`based_template`."""
    return private_copy(based_template, tmp_path / "repo")


def check_base(companyos, root: Path, *extra: str):
    assert companyos("render", "--quiet", cwd=root).code == 0
    before = snapshot(root)
    result = companyos("check", "--base", "HEAD", *extra, cwd=root)
    assert "Traceback" not in result.err
    assert snapshot(root) == before, "check never writes"
    return result


def listed(text: str) -> list[str]:
    return [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("- ")]


def test_unchanged_catalog_passes(companyos, based):
    result = check_base(companyos, based)
    assert result.code == 0, result.err
    assert "would destroy" not in result.out + result.err


def test_harmless_change_passes(companyos, based):
    override(based, "globex", "prod", {"services": {"api": {"replicas": 4}}})
    result = check_base(companyos, based)
    assert result.code == 0, result.err


def test_dropping_a_tenant_is_blocked_and_listed(companyos, based):
    base_roots = sorted(p.relative_to(based).as_posix() for p in (based / "rendered/terraform").glob("*/tenant-hooli"))
    (based / "tenants/hooli.yaml").unlink()
    result = check_base(companyos, based)
    assert result.code == 1
    items = listed(result.err)
    assert "tenant 'hooli' (tenants/hooli.yaml removed)" in items
    assert "allow-destruction" in result.err and "--acknowledge-destruction" in result.err
    for root in base_roots:
        assert f"Terraform root {root} (terraform destroy of its whole state)" in items
    apps = [i for i in items if i.startswith("Argo CD")]
    assert apps and all("hooli" in i for i in apps)
    assert not [i for i in items if "acme" in i or "globex" in i]


def test_acknowledged_destruction_passes_and_still_lists(companyos, based):
    (based / "tenants/hooli.yaml").unlink()
    result = check_base(companyos, based, "--acknowledge-destruction")
    assert result.code == 0, result.err
    assert "tenant 'hooli' (tenants/hooli.yaml removed)" in listed(result.out)
    assert "acknowledged" in result.out


def test_tenant_leaving_an_environment(companyos, based):
    edit_yaml(based / "tenants/hooli.yaml", lambda d: d.__setitem__("environments", ["prod"]))
    result = check_base(companyos, based)
    assert result.code == 1
    items = listed(result.err)
    assert "tenant 'hooli' in environment 'dev' (removed from its environments)" in items
    assert not any("prod" in i for i in items), items


def test_turning_off_deletion_protection(companyos, based):
    override(based, "globex", "prod", {"database": {"deletion_protection": False}})
    result = check_base(companyos, based, "--format", "json")
    assert result.code == 1
    import json

    data = json.loads(result.out)
    assert "deletion protection of tenant 'globex' database in prod (database.deletion_protection turned off)" in data["destroyed"]
    assert data["acknowledged"] is False


def test_rendered_terraform_deletion_protection_removed(based):
    """The text comparison catches protection switched off by a template, not a setting."""
    from generator import pipeline
    from generator.catalog import snapshot as baseline
    from generator.ops import destructive

    built = pipeline.build(based)
    path = next(p for p in built.result.files if p.startswith("rendered/terraform/") and b"deletion_protection" in built.result.files[p])
    files = dict(built.result.files)
    files[path] = files[path].replace(b"= true", b"= false")
    with baseline.at(based, "HEAD") as base:
        found = destructive.compare(built.model, type(built.result)(files, built.result.manifest), base)
    assert any(path in item for item in found.items), found.items


def test_unknown_base_ref_is_a_usage_error(companyos, based):
    result = companyos("check", "--base", "no-such-ref", cwd=based)
    assert result.code == 2
    assert "no-such-ref" in result.err and "Traceback" not in result.err


def test_base_without_git_is_a_usage_error(companyos, repo):
    result = companyos("check", "--base", "HEAD", cwd=repo)
    assert result.code == 2 and "git" in result.err and "Traceback" not in result.err


def test_dropped_environment_is_listed(based):
    from generator import pipeline
    from generator.catalog import snapshot as baseline
    from generator.ops import destructive

    built = pipeline.build(based)
    with baseline.at(based, "HEAD") as base:
        # the base had one more environment than the working catalog
        (base.root / "environments/qa.yaml").write_text("name: qa\n", encoding="utf-8")
        found = destructive.compare(built.model, built.result, base)
    assert found.items == ["environment 'qa' (environments/qa.yaml removed)"]


def test_applicationset_elements_inside_matrix_generators():
    from generator.ops.destructive import argocd_objects

    doc = b"""apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: svc, namespace: argocd}
spec:
  generators:
    - matrix:
        generators:
          - list:
              elements:
                - {tenant: acme, service: api}
                - {tenant: globex, service: api}
          - clusters: {}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: root}
"""
    found = argocd_objects([("rendered/argocd/x.yaml", doc)])
    assert found == {
        "Argo CD ApplicationSet argocd/svc element (tenant=acme, service=api)",
        "Argo CD ApplicationSet argocd/svc element (tenant=globex, service=api)",
        "Argo CD Application argocd/root",
    }


def test_the_base_writes_only_catalog_inputs_and_reads_its_output_from_git(based):
    """``check --base`` at thousands of tenants: the committed output is indexed, not written out;
    what a guard reads of it comes from git's blobs, and equal bytes are known by blob id."""
    import subprocess

    from generator.catalog import snapshot as baseline

    manifest = "rendered/.companyos-units/global.json"
    committed = subprocess.run(["git", "show", f"HEAD:{manifest}"], cwd=based, capture_output=True, check=True).stdout
    with baseline.at(based, "HEAD") as base:
        assert not (base.root / "rendered").exists()  # nothing of the output on disk
        assert (base.root / "catalog/platform.yaml").is_file() and (base.root / "tenants").is_dir()
        assert base.file(manifest) == committed  # the blob, byte for byte
        assert base.same(manifest, committed) and not base.same(manifest, committed + b" ")
        assert base.file("rendered/no/such/file.yaml") is None and not base.same("rendered/no/such/file.yaml", b"")
        listed = base.blob_ids(list(base.paths("rendered/argocd")))
        tracked = subprocess.run(
            ["git", "ls-files", "-s", "rendered/argocd"], cwd=based, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        assert listed == {line.split("\t")[1]: bytes.fromhex(line.split()[1]) for line in tracked} and listed
        # only the unit manifests are indexed; any other file's id is asked of git, all at once
        units = subprocess.run(["git", "ls-files", "rendered/.companyos-units"], cwd=based, capture_output=True, text=True, check=True)
        assert set(base.manifests) == set(units.stdout.split())
        some = sorted(listed)[:5]
        assert base.blob_ids([*some, "rendered/no/such/file.yaml", manifest]) == {
            **{p: listed[p] for p in some},
            manifest: base.manifests[manifest],
        }
        assert base.unit_manifests() == sorted(base.manifests)


def test_the_base_reads_from_git_only_the_inputs_the_working_tree_changed(based, monkeypatch):
    """At 10,000 tenants one object read per base input file was seconds of ``check --base``: a
    working-tree file with the base's blob id is copied, any other (edited, removed, replaced by
    a link or a FIFO) comes from git, byte for byte."""
    import os
    import subprocess

    from generator.catalog import snapshot as baseline

    read: list[str] = []
    real = baseline.read_blob
    monkeypatch.setattr(baseline, "read_blob", lambda repo, sha: read.append(sha) or real(repo, sha))
    edit_yaml(based / "tenants/globex.yaml", lambda d: d.update(owner="platform-b@example.com"))
    (based / "tenants/hooli.yaml").unlink()
    os.mkfifo(based / "tenants/hooli.yaml")  # never opened for reading (it would block)
    (based / "tenants/acme.yaml").rename(based / "acme.yaml")
    (based / "tenants/acme.yaml").symlink_to(based / "acme.yaml")
    exported = subprocess.run(
        ["git", "ls-files", "-z", "catalog", "tenants", "environments", "templates"], cwd=based, capture_output=True, text=True, check=True
    ).stdout.split("\0")[:-1]
    with baseline.at(based, "HEAD") as base:
        # an unchanged tenant file is held, not written, until a reader asks for it
        assert not (base.root / "tenants/umbrella.yaml").exists() and (base.root / "tenants/globex.yaml").is_file()
        assert "umbrella" in base.tenant_names() and base.raw("tenants/*.yaml", changed_only=True)["umbrella"] == {}
        assert base.raw("tenants/*.yaml")["umbrella"]["name"] == "umbrella"
        assert base.catalog_root(["initech"]) == base.root and (base.root / "tenants/initech.yaml").is_file()
        assert not (base.root / "tenants/umbrella.yaml").exists()
        base.catalog_root()
        for rel in exported:
            committed = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=based, capture_output=True, check=True).stdout
            assert (base.root / rel).read_bytes() == committed, rel
    assert len(read) == 3, read  # globex, hooli, acme


def test_only_base_tenant_files_that_differ_are_parsed(based):
    """At 10,000 tenants parsing every base tenant file was a second of each ``check --base``:
    a file the working tree holds unchanged is listed by name only (its environments are the
    ones the current catalog renders), a changed or removed one is parsed."""
    from generator.catalog import snapshot as baseline

    edit_yaml(based / "tenants/hooli.yaml", lambda d: d.__setitem__("environments", ["prod"]))
    (based / "tenants/globex.yaml").unlink()
    with baseline.at(based, "HEAD") as base:
        every = base.raw("tenants/*.yaml")
        changed = base.raw("tenants/*.yaml", changed_only=True)
    assert set(changed) == set(every) and {"acme", "globex", "hooli"} <= set(every)
    assert changed["acme"] == {} and every["acme"]["environments"]
    assert changed["hooli"] == every["hooli"] and "dev" in changed["hooli"]["environments"]
    assert changed["globex"] == every["globex"] != {}


def test_only_argo_cd_files_that_differ_from_the_base_are_parsed(companyos, based, monkeypatch):
    """Objects in files equal to the base's are on both sides; a harmless one-tenant change
    parses only that tenant's changed Argo CD files, a real removal is still listed."""
    parsed: list[str] = []
    real = destructive.argocd_objects

    def recording(files):
        files = list(files)
        parsed.extend(path for path, _ in files)
        return real(files)

    monkeypatch.setattr(destructive, "argocd_objects", recording)
    override(based, "globex", "prod", {"services": {"api": {"replicas": 4}}})
    result = check_base(companyos, based)
    assert result.code == 0, result.err
    assert all("globex" in p for p in parsed), parsed[:5]  # (replicas: no Argo CD file changed, none parsed)
    parsed.clear()
    (based / "tenants/hooli.yaml").unlink()
    result = check_base(companyos, based)
    assert result.code == 1 and any("hooli" in line and "Application" in line for line in listed(result.out + result.err))
    # the candidates were confirmed against every file: the base's and today's Argo CD files were all read
    assert len(parsed) > 2 * len([p for p in parsed if "hooli" in p])


def test_a_harmless_change_never_lists_the_bases_argo_cd_folder(companyos, based, monkeypatch):
    """The candidates come from the files of the base's units whose manifest differs: the
    base's whole Argo CD folder (~360,000 paths at 10,000 tenants) is listed only to confirm
    a removal, which is still found."""
    from generator.catalog.snapshot import Baseline

    asked: list[str] = []
    real = Baseline.paths

    def listing(self, prefix):  # type: ignore[no-untyped-def]
        asked.append(prefix)
        return real(self, prefix)

    monkeypatch.setattr(Baseline, "paths", listing)
    override(based, "globex", "prod", {"services": {"api": {"replicas": 4}}})
    assert check_base(companyos, based).code == 0
    assert destructive.ARGOCD_DIR not in asked
    (based / "tenants/hooli.yaml").unlink()
    result = check_base(companyos, based)
    assert result.code == 1 and any("hooli" in line and "Application" in line for line in listed(result.out + result.err))
    assert destructive.ARGOCD_DIR in asked  # listed to confirm the candidates


def test_only_base_unit_manifests_that_differ_are_read_for_removed_roots(companyos, based, monkeypatch):
    """A unit whose manifest is the base's lists the same roots on both sides: a one-tenant
    change reads the base's manifests of that tenant (and the global unit's, if it changed), and a
    dropped tenant's roots are still listed (its manifest is gone from today's render)."""
    read: list[str] = []
    real = destructive.manifests_files

    def recording(found, **kwargs):
        read.extend(found)
        return real(found, **kwargs)

    monkeypatch.setattr(destructive, "manifests_files", recording)
    edit_yaml(based / "tenants/globex.yaml", lambda data: data.update(owner="platform-b@example.com"))
    result = check_base(companyos, based)
    assert result.code == 0, result.err
    names = {p.rsplit("/", 1)[1] for p in read}
    assert "tenant-globex.json" in names and names <= {"global.json", "tenant-globex.json"}, read
    read.clear()
    (based / "tenants/hooli.yaml").unlink()
    result = check_base(companyos, based, "--acknowledge-destruction")
    assert any(line.startswith("Terraform root rendered/terraform/") and "hooli" in line for line in listed(result.out + result.err))
    assert any(p.endswith("/tenant-hooli.json") for p in read)


def _roots_named(root: Path) -> set[str]:
    """Every Terraform root a file of the rendered tree at ``root`` names (its unit manifests)."""
    return {entry["root"] for entry in read_manifest(root).values() if entry.get("root")}


def test_the_roots_listed_are_exactly_those_no_file_names_any_more(companyos, based, monkeypatch):
    """Only the base's units whose manifest differs can drop a root, and their roots are
    compared with the same units' files today. A dropped tenant's unit also names its pool's
    and the shared roots: those live on in the global unit and must not be listed, so a root
    missing from the unit is confirmed against every file. A harmless edit confirms nothing:
    the roots of every file today are never gathered (~0.3 s at 10,000 x 3)."""
    sizes: list[int] = []
    real = destructive.manifest_roots

    def recording(files):
        sizes.append(len(files))
        return real(files)

    monkeypatch.setattr(destructive, "manifest_roots", recording)
    before = _roots_named(based)
    edit_yaml(based / "tenants/globex.yaml", lambda data: data.update(owner="platform-b@example.com"))
    assert check_base(companyos, based).code == 0
    everything = len(read_manifest(based))
    assert sizes and max(sizes) < everything / 2, (sizes, everything)
    sizes.clear()
    (based / "tenants/hooli.yaml").unlink()
    result = check_base(companyos, based, "--acknowledge-destruction")
    gone = before - _roots_named(based)
    said = {line.split()[2] for line in listed(result.out + result.err) if line.startswith("Terraform root ")}
    assert gone and all("tenant-hooli" in root for root in gone)
    assert said == gone
    assert max(sizes) >= everything / 2, "a candidate was not confirmed against every file"


def _spy_model_at(monkeypatch) -> list[object]:
    """Record the tenants each resolution of the base was asked for (None: all of them), and
    check that it read no other tenant's file."""
    asked: list[object] = []
    real = pipeline.model_at

    def recording(base, only=None):
        asked.append(None if only is None else sorted(only))
        model, error = real(base, only)
        assert model is not None, error
        assert only is None or set(model.catalog.tenants) == set(only), "the base read tenant files it was not asked for"
        written = {p.stem for p in (base.root / "tenants").glob("*.yaml")}
        assert only is None or written == set(only), f"the base snapshot wrote tenant files nobody read: {sorted(written - set(only))}"
        return model, error

    monkeypatch.setattr(pipeline, "model_at", recording)
    return asked


def test_the_base_is_resolved_only_for_tenants_whose_inputs_changed(companyos, based, monkeypatch):
    """A tenant whose inputs are the base's has the base's settings: a one-tenant edit resolves
    that tenant at the base, an onboarding resolves nothing, and the edit is still judged."""
    asked = _spy_model_at(monkeypatch)
    override(based, "globex", "prod", {"database": {"deletion_protection": False}})
    result = check_base(companyos, based)
    assert result.code == 1 and "deletion protection of tenant 'globex' database in prod" in result.out + result.err
    assert asked == [["globex"]]
    asked.clear()
    override(based, "globex", "prod", {"database": {"deletion_protection": True}})
    assert companyos("render", "--quiet", cwd=based).code == 0
    commit_all(based, "globex protected again")
    onboarded = companyos(
        "new-tenant",
        "newco",
        "--tier",
        "standard",
        "--owner",
        "a@example.com",
        "--cost-center",
        "CC-2001",
        "--no-input",
        "--no-commit",
        cwd=based,
    )
    assert onboarded.code == 0, onboarded.err
    result = check_base(companyos, based)
    assert result.code == 0, result.err
    assert asked == [], "an onboarding resolved the base although no tenant of the base changed"


def test_a_shared_change_compares_every_tenant(companyos, based, monkeypatch):
    """Protection switched off in a tier (context: every tenant renders again) is found in
    every tenant of that tier, with the base resolved for all of them."""
    asked = _spy_model_at(monkeypatch)
    edit_yaml(
        based / "catalog/tiers/standard.yaml",
        lambda d: d.setdefault("settings", {}).setdefault("database", {}).update(deletion_protection=False),
    )
    result = check_base(companyos, based, "--format", "json")
    import json

    data = json.loads(result.out)
    turned_off = [i for i in data["destroyed"] if i.startswith("deletion protection of tenant")]
    assert turned_off and result.code == 1
    standard = sorted(p.stem for p in (based / "tenants").glob("*.yaml") if "tier: standard" in p.read_text())
    assert {i.split("'")[1] for i in turned_off} == set(standard)
    assert asked == [sorted(p.stem for p in (based / "tenants").glob("*.yaml"))]


def test_reused_units_manifests_are_not_hashed_against_the_base_again(companyos, based, monkeypatch):
    """A unit ``check --base`` reused holds the base's manifest already (the plan read it from
    the base): the destruction report does not ask git's blob id of it a second time. The
    edited tenant's unit is still compared."""
    asked: list[str] = []
    real = snapshot_module.Baseline.same

    def recording(self, rel, data):
        asked.append(rel)
        return real(self, rel, data)

    monkeypatch.setattr(snapshot_module.Baseline, "same", recording)
    edit_yaml(based / "tenants/globex.yaml", lambda data: data.update(owner="platform-b@example.com"))
    result = check_base(companyos, based)
    assert result.code == 0, result.err
    units = [p.rsplit("/", 1)[1] for p in asked if "/.companyos-units/" in p]
    assert "tenant-globex.json" in units, asked
    assert not [u for u in units if u.startswith("tenant-") and u != "tenant-globex.json"], units


@pytest.mark.parametrize(
    "rel",
    [
        "tenants/acme.yaml",
        "tenants/.hidden.yaml",
        "tenants/a/b.yaml",
        "tenants/acme.yml",
        "other/acme.yaml",
        "tenants/a.b.yaml",
        "tenants/",
    ],
)
@pytest.mark.parametrize("pattern", ["tenants/*.yaml", "tenants/*.y*ml", "*/acme.yaml", "tenants/[a-c]*.yaml", "tenants/?cme.yaml"])
def test_a_held_file_matches_a_glob_as_path_glob_would(rel, pattern):
    """The base's held files are matched the way ``Path.glob`` matches the written ones."""
    from pathlib import PurePosixPath

    expected = rel.count("/") == pattern.count("/") and PurePosixPath(rel).match(pattern)
    assert snapshot_module._matches(rel, pattern) == expected
