"""``companyos lint``: checkov and the structural validators over a fresh render.

checkov is slow, so it runs once per session, over the sample's render plus a few canary
files that each validator must reject: the sample must come out clean, and every canary
must be caught by the tool responsible for it (proof that the wiring works)."""

from __future__ import annotations

import pytest

from generator import pipeline, vendor
from generator.errors import CatalogErrors
from generator.ops import lint
from generator.output.render import RenderResult
from helpers.catalog_edit import edit_yaml
from helpers.repo import REPO

#: One worker runs this module, so the session's lint (checkov over the whole render, about
#: 80 s) runs once, not once per worker.
pytestmark = pytest.mark.xdist_group("lint")

CANARY = "rendered/zz-lint-canary"
CANARIES = {
    f"{CANARY}/privileged.yaml": b"""apiVersion: v1
kind: Pod
metadata:
  name: canary
  namespace: default
spec:
  containers:
    - name: app
      image: busybox:1.36
      securityContext:
        privileged: true
""",
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
