"""``companyos lint``: checkov and the structural validators over a fresh render.

checkov is slow, so it runs once per session, over the sample's render plus a few canary
files that each validator must reject: the sample must come out clean, and every canary
must be caught by the tool responsible for it (proof that the wiring works)."""

from __future__ import annotations

import json
import subprocess

import pytest

from generator import pipeline, vendor
from generator.errors import CatalogErrors
from generator.ops import lint
from generator.output.render import RenderResult
from helpers.catalog_edit import edit_yaml
from helpers.k8s import privileged_pod
from helpers.repo import REPO

#: One worker runs this module, so the session's lint (checkov over the whole render, about
#: 80 s) runs once, not once per worker.
pytestmark = pytest.mark.xdist_group("lint")

CANARY = "rendered/zz-lint-canary"
CANARIES = {
    f"{CANARY}/privileged.yaml": privileged_pod("canary", "default").encode(),
    f"{CANARY}/typo.yaml": b"""apiVersion: v1
kind: ConfigMap
metadata:
  name: canary
datta:
  key: value
""",
    # caught only if the vendored Argo CD CRD schemas are found and read (lint's default)
    f"{CANARY}/crd-typo.yaml": b"""apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: canary
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://example.com/repo.git
    path: app
  destination:
    server: https://kubernetes.default.svc
    namespace: default
  syncPolicyy: {}
""",
    f"{CANARY}/style.yaml": b"""key: 1
key: 2
""",
    ".github/workflows/zz-canary.yml": b"""name: canary
on: pushh
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo hi
""",
}


def checkov_available() -> bool:
    try:
        lint.checkov_binary(REPO)
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def linted(sample) -> lint.LintReport:
    files = {**sample.result.files, **CANARIES}
    build = pipeline.Build(sample.root, sample.model, RenderResult(dict(sorted(files.items())), sample.result.manifest), sample.policy)
    return lint.run(build, use_checkov=checkov_available())  # the default CRD schemas: the vendored ones


def tool(report: lint.LintReport, prefix: str) -> lint.ToolResult:
    return next(t for t in report.tools if t.name.startswith(prefix))


def outside_canaries(errors: list[str]) -> list[str]:
    return [e for e in errors if CANARY not in e and "zz-canary" not in e]


@pytest.mark.parametrize("name", ["yamllint", "check-jsonschema", "kubernetes-validate", "checkov"])
def test_sample_render_is_clean(linted, name):
    if name == "checkov" and not checkov_available():
        pytest.skip("checkov is not installed (make install-test)")
    assert outside_canaries(tool(linted, name).errors) == []


def test_every_validator_catches_its_canary(linted):
    assert any("style.yaml" in e and "key-duplicates" in e for e in tool(linted, "yamllint").errors)
    assert any("zz-canary.yml" in e for e in tool(linted, "check-jsonschema").errors)
    assert any("typo.yaml" in e and "datta" in e for e in tool(linted, "kubernetes-validate").errors)
    assert any("crd-typo.yaml" in e and "syncPolicyy" in e for e in tool(linted, "kubernetes-validate").errors)
    if checkov_available():
        assert any("privileged.yaml" in e and "CKV_K8S_16" in e for e in tool(linted, "checkov").errors)


def test_validators_saw_every_output_kind(linted, sample):
    paths = list(sample.result.files)
    yaml_count = sum(p.endswith((".yaml", ".yml")) for p in paths)
    assert tool(linted, "yamllint").files == yaml_count + len(CANARIES)
    kube = tool(linted, "kubernetes-validate")
    assert "not found" not in (kube.note or ""), kube.note
    assert vendor.crd_schema_dir().is_dir()  # what lint read: inside the package, not beside the checkout
    if any(p.startswith(("rendered/argocd/", "rendered/migrations/")) for p in paths):
        assert kube.files > 2
    if not checkov_available():
        return
    frameworks = set(linted.checkov)
    assert "kubernetes" in frameworks and "github_actions" in frameworks  # canaries at least
    if any(p.startswith("rendered/terraform/") for p in paths):
        assert "terraform" in frameworks and linted.checkov["terraform"]["passed"] > 0
    for counts in linted.checkov.values():
        assert counts["parsing_errors"] == 0
    if any(p.startswith("rendered/migrations/") for p in paths):
        assert linted.checkov["kubernetes"]["skipped"] > 0, "catalog/lint.yaml skips scoped to rendered/migrations/"


def test_every_skip_has_a_reason_and_a_location(repo):
    path = repo / lint.CONFIG_PATH
    edit_yaml(path, lambda d: d["checkov"]["skip"].append({"id": "CKV_K8S_99"}))
    with pytest.raises(CatalogErrors) as exc:
        lint.load_config(repo)
    (err,) = exc.value.errors
    assert err.location.path == lint.CONFIG_PATH and err.location.line > 1
    assert "reason" in err.message


def test_config_in_the_repository_is_valid():
    config = lint.load_config(REPO)
    assert all(len(s.reason) >= 10 for s in config.checkov.skip)


def test_cli_without_checkov(companyos, repo):
    result = companyos("lint", "--no-checkov", cwd=repo)
    assert result.code == 0, result.out + result.err
    assert "yamllint" in result.out and "kubernetes-validate" in result.out and "checkov" not in result.out


def test_missing_checkov_is_a_usage_error(companyos, repo, monkeypatch):
    # the scratch repository has no .venv-tools; nothing on PATH or in $CHECKOV either
    monkeypatch.setenv("CHECKOV", str(repo / "no-such-checkov"))
    monkeypatch.setenv("PATH", str(repo / "empty-bin"))
    result = companyos("lint", cwd=repo)
    assert result.code == 2 and "checkov not found" in result.err and "Traceback" not in result.err


PRIVILEGED = CANARIES[f"{CANARY}/privileged.yaml"].decode()


def _write(folder, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)


def _plain_checkov(binary: str, folder, framework: str, config: lint.LintConfig) -> dict:
    """The summary of one plain ``checkov -d folder`` run of ``framework``, with lint's global skips."""
    args = [binary, "-d", str(folder), "--framework", framework, "-o", "json", "--quiet", "--compact", "--skip-download"]
    args += ["--download-external-modules", "false", "--skip-check", ",".join(sorted({s.id for s in config.checkov.skip if not s.paths}))]
    return json.loads(subprocess.run(args, capture_output=True, text=True, check=False, cwd=folder).stdout)["summary"]


def test_kubernetes_manifests_are_judged_in_runs_of_a_few_units_as_in_one_run(sample, tmp_path, monkeypatch):
    """checkov's Kubernetes graph checks grow faster than the manifests (one run over 200
    tenants' did not finish in 12 minutes), so they run a few units at a time: the same
    findings and counts as one run over every manifest, a planted fault in two units found in
    both. A file no unit owns is judged in a run of its own, where no unit's NetworkPolicy
    passes its pod (CKV2_K8S_6 does not compare namespaces)."""
    if not checkov_available():
        pytest.skip("checkov is not installed (make install-test)")
    from generator.output import units

    owners = {path: units.unit_of(entry) for path, entry in sample.result.manifest["files"].items()}
    planted = {f"rendered/argocd/prod/namespaces/{t}.yaml": privileged_pod("canary", f"tenant-{t}") for t in ("acme", "umbrella")}
    assert {owners[rel] for rel in planted} == {"tenant/acme", "tenant/umbrella"}
    kube = {rel: data for rel, data in sample.result.files.items() if rel.endswith(lint.K8S_SUFFIXES) and not rel.startswith(".github/")}
    _write(tmp_path, {rel: data + (b"---\n" + planted[rel].encode() if rel in planted else b"") for rel, data in kube.items()})
    config, binary = lint.load_config(sample.root), lint.checkov_binary(REPO)
    monkeypatch.setattr(lint, "K8S_UNITS_PER_RUN", 2)
    groups = lint._kubernetes_groups(tmp_path, owners)
    assert len(groups) == 3  # global and five tenants, two units a run
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    # every file the Kubernetes framework would read, the unit manifests aside (ours, never Kubernetes')
    assert sorted(p for g in groups for p in g) == [p for p in written if not p.startswith("rendered/.companyos-units/")]
    split = lint.LintReport()
    split_result = lint._checkov(tmp_path, binary, config, split, owners)
    monkeypatch.setattr(lint, "K8S_UNITS_PER_RUN", 1000)
    assert len(lint._kubernetes_groups(tmp_path, owners)) == 1
    one = lint.LintReport()
    one_result = lint._checkov(tmp_path, binary, config, one, owners)
    assert split.checkov == one.checkov and split.checkov["kubernetes"]["passed"] > 0
    assert sorted(split_result.errors) == sorted(one_result.errors) and split_result.files == one_result.files
    for where in planted:
        assert any(e.startswith(f"{where}:") and "CKV_K8S_16" in e for e in split_result.errors), where
    # and as checkov counts them in one plain run over the folder
    plain = _plain_checkov(binary, tmp_path, "kubernetes", config)
    assert (split.checkov["kubernetes"]["passed"], split_result.files) == (plain["passed"], plain["resource_count"])
    # a file no unit owns: a run of its own
    (tmp_path / CANARY).mkdir(parents=True)
    (tmp_path / CANARY / "privileged.yaml").write_text(PRIVILEGED, encoding="utf-8")
    assert lint._kubernetes_groups(tmp_path, owners)[-1] == [f"{CANARY}/privileged.yaml"]
    alone = lint._checkov(tmp_path, binary, config, lint.LintReport(), owners)
    canary = {e.split(" ")[1] for e in alone.errors if e.startswith(f"{CANARY}/privileged.yaml:")}
    assert {"CKV_K8S_16", "CKV2_K8S_6"} <= canary


def test_kubernetes_validate_reads_each_schema_once_and_judges_as_before(sample, tmp_path, monkeypatch):
    """kubernetes-validate parses its schema and ~1 MB of definitions for every document; lint
    keeps each parse for the run (and puts the library back after), with the same verdicts."""
    import contextlib

    from kubernetes_validate import utils

    files = {**sample.result.files, **CANARIES}
    _write(tmp_path, files)
    yaml_files = sorted(f for f in files if f.endswith((".yaml", ".yml")))
    reads: list[str] = []
    uncached = utils.schema_contents

    def counted(filename: str, desired_version: str):
        reads.append(filename)
        return uncached(filename, desired_version)

    monkeypatch.setattr(utils, "schema_contents", counted)
    kept = lint._kubernetes(tmp_path, yaml_files, vendor.crd_schema_dir(), set())
    assert utils.schema_contents is counted  # put back
    assert reads and len(reads) == len(set(reads))  # each schema file parsed once
    assert any(r.endswith("/_definitions.json") for r in reads)
    reads.clear()
    monkeypatch.setattr(lint, "_schemas_read_once", contextlib.nullcontext)
    plain = lint._kubernetes(tmp_path, yaml_files, vendor.crd_schema_dir(), set())
    assert len(reads) > len(set(reads))  # the library alone reads them again and again
    assert (kept.errors, kept.files) == (plain.errors, plain.files)
    assert any("typo.yaml" in e and "datta" in e for e in kept.errors)


#: An ingress from anywhere to port 22 (CKV_AWS_24), planted in two roots.
OPEN_SSH = """
resource "aws_security_group" "planted" {
  name = "planted"
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
"""


def test_terraform_roots_are_judged_in_runs_of_whole_roots_as_in_one_run(sample, tmp_path, monkeypatch):
    """checkov's Terraform framework judges each root alone, so lint gives it runs of whole
    roots (both cores busy, each run's memory small): the same counts and findings as one
    plain run over the folder, a fault planted in two roots found in both."""
    if not checkov_available():
        pytest.skip("checkov is not installed (make install-test)")
    planted = {"rendered/terraform/org/main.tf", "rendered/terraform/prod/tenant-acme/main.tf"}
    terraform = {rel: data for rel, data in sample.result.files.items() if rel.endswith(".tf")}
    _write(tmp_path, {rel: data + (OPEN_SSH.encode() if rel in planted else b"") for rel, data in terraform.items()})
    assert planted <= {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.tf")}
    config, binary = lint.load_config(sample.root), lint.checkov_binary(REPO)
    monkeypatch.setattr(lint, "TF_ROOTS_PER_RUN", 10)
    groups = lint._terraform_groups(tmp_path)
    roots = [{p.rsplit("/", 1)[0] for p in group} for group in groups]
    assert len(groups) > 1 and all(len(r) <= 10 for r in roots)
    assert sum(map(len, roots)) == len(set().union(*roots))  # a root is in one run, whole
    assert sorted(p for g in groups for p in g) == sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.tf"))
    split = lint.LintReport()
    split_result = lint._checkov(tmp_path, binary, config, split, {})
    plain = _plain_checkov(binary, tmp_path, "terraform", config)
    assert (split.checkov["terraform"]["passed"], split_result.files) == (plain["passed"], plain["resource_count"])
    # what checkov failed is reported, or skipped by a catalog/lint.yaml rule scoped to its path
    assert split.checkov["terraform"]["failed"] + split.checkov["terraform"]["skipped"] == plain["failed"]
    assert split_result.errors and {e.split(":")[0] for e in split_result.errors} == planted
    for where in planted:
        assert any(e.startswith(f"{where}:") and "CKV_AWS_24" in e for e in split_result.errors), where
