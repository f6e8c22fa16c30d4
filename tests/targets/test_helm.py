"""Helm values: every rendered file validates against the chart's own values schema, uses
only keys the chart knows, and never carries a secret."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml

from generator import pipeline, vendor
from generator.targets.common import canary_enabled, keda_scaled
from helpers.catalog_edit import edit_yaml
from helpers.yaml_docs import load_yaml_docs

SCHEMA = vendor.helm_values_schema()
DEFAULTS = SCHEMA.with_name("application-9.2.0.values.yaml")
#: Maps whose keys are user-chosen names in the chart (not chart options).
#: Kubernetes probe fields the chart passes through verbatim (its README notes upstream's own
#: ci/values.yaml sets readinessProbe.initialDelaySeconds) but does not declare.
PASS_THROUGH = {("deployment", probe, "initialDelaySeconds") for probe in ("readinessProbe", "livenessProbe", "startupProbe")}
FREE_FORM = {
    "additionalLabels",
    "annotations",
    "env",
    "envFrom",
    "files",
    "resources",
    "securityContext",
    "containerSecurityContext",
    "httpGet",
    "podLabels",
    # the flagd injection annotations (targets/feature_flags.py): names, not chart options
    "additionalPodAnnotations",
    "selector",
    # Karpenter placement (targets/common.placement): node labels and taints, not chart options.
    "nodeSelector",
    "tolerations",
}


@pytest.fixture(scope="module")
def helm_files(sample):
    # Per-service values only: rendered/helm/<env>/standby/<tenant>.yaml is the DR standby overlay
    # (targets/argocd/standby.py, tests/targets/argocd/test_standby.py), not a service's values.
    files = {p: d for p, d in sample.result.files.items() if p.startswith("rendered/helm/") and not _overlay(p)}
    assert files
    return files


def _overlay(path: str) -> bool:
    return path.split("/")[3:4] == ["standby"]


def test_one_values_file_per_tenant_environment_service(sample, helm_files):
    expected = {f"rendered/helm/{d.env}/{d.name}/{s.name}.yaml" for d in sample.model.deployments for s in d.services}
    assert set(helm_files) == expected
    overlays = {p for p in sample.result.files if p.startswith("rendered/helm/") and _overlay(p)}
    # one overlay per tenant of each environment with a standby, nothing else in that folder
    assert overlays == {f"rendered/helm/{d.env}/standby/{d.name}.yaml" for d in sample.model.deployments if d.environment.disaster_recovery}


def test_values_validate_against_chart_schema(helm_files):
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    for path, data in helm_files.items():
        (values,) = load_yaml_docs(data)
        errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(values)]
        assert not errors, (path, errors)


def _known_paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            if key not in FREE_FORM:
                yield from _known_paths(value, (*prefix, key))


def _schema_paths(schema, prefix=()):
    for key, sub in (schema.get("properties") or {}).items():
        yield (*prefix, key)
        yield from _schema_paths(sub, (*prefix, key))


def test_values_use_only_keys_the_chart_defines(helm_files):
    """The chart schema allows unknown keys, so a typo (`replica:`) would be silently ignored
    by Helm; compare against the keys the chart's schema and defaults actually declare."""
    declared = set(_schema_paths(json.loads(SCHEMA.read_text()))) | set(_known_paths(yaml.safe_load(DEFAULTS.read_text()))) | PASS_THROUGH
    for path, data in helm_files.items():
        (values,) = load_yaml_docs(data)
        unknown = [".".join(map(str, p)) for p in _known_paths(values) if p not in declared and not any(str(x).isdigit() for x in p)]
        assert not unknown, (path, unknown)


def test_hardened_defaults_and_irsa(sample, helm_files):
    for d in sample.model.deployments:
        for s in d.services:
            (values,) = load_yaml_docs(helm_files[f"rendered/helm/{d.env}/{d.name}/{s.name}.yaml"])
            sc = values["deployment"]["containerSecurityContext"]
            assert sc["readOnlyRootFilesystem"] and sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"]
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert values["deployment"]["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
            arn = values["rbac"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
            assert arn == f"arn:aws:iam::{d.account_id}:role/companyos-{d.env}-{d.name}-{s.name}"
            assert values["deployment"]["image"]["tag"] == d.image_tag(s.name)
            if canary_enabled(d, s) or keda_scaled(sample.model, d, s):  # the Argo Rollout owns the pods (docs/delivery.md)
                assert "replicas" not in values["deployment"] and values["autoscaling"]["enabled"] is False
            else:
                assert values["deployment"]["replicas"] == d.settings.services[s.name].replicas


def test_secrets_are_references_only(helm_files):
    for path, data in helm_files.items():
        (values,) = load_yaml_docs(data)
        for entry in (values.get("externalSecret", {}).get("files") or {}).values():
            for ref in (entry.get("data") or {}).values():
                assert set(ref) == {"remoteRef"} and set(ref["remoteRef"]) <= {"key", "property"}
            if "dataFrom" in entry:
                assert set(entry["dataFrom"]) == {"key"}
        for env in values["deployment"]["env"].values():
            assert not re.search(r"(?i)(password|secret|token|key)", json.dumps(env)), path


def test_tenant_override_and_image_pin_reach_the_values(repo):
    edit_yaml(
        repo / "tenants/globex.yaml",
        lambda d: d.__setitem__(
            "overrides", {"prod": {"services": {"web": {"replicas": 7, "image_tag": "3.1.9", "canary": {"enabled": False}}}}}
        ),
    )
    files = pipeline.build(repo).result.files
    (prod,) = load_yaml_docs(files["rendered/helm/prod/globex/web.yaml"])
    (dev,) = load_yaml_docs(files["rendered/helm/dev/globex/web.yaml"])
    assert (prod["deployment"]["replicas"], prod["deployment"]["image"]["tag"]) == (7, "3.1.9")
    assert (dev["deployment"]["replicas"], dev["deployment"]["image"]["tag"]) == (2, "3.2.0")
