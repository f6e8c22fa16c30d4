"""Synthetic checks (issue 16 item 6): one Prometheus Operator Probe per public service host
and environment, valid against the vendored CRD schema, probing the URL users reach through
the blackbox exporter add-on, which Prometheus selects; without the exporter the render fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from generator import pipeline, vendor
from generator.errors import CatalogErrors
from generator.model import naming
from generator.targets import common, probes
from helpers.yaml_docs import load_yaml_docs

SCHEMA = vendor.crd_schema_dir() / "monitoring.coreos.com_v1_Probe.json"


def _probes(build: pipeline.Build) -> list[tuple[str, dict[str, Any]]]:
    return [(p, d) for p, t in sorted(build.result.files.items()) if "/probes/" in p for d in load_yaml_docs(t) if d]


def test_one_probe_per_public_service_host(sample):
    expected = {common.probe_path(d.env, d.name, s.name) for d in sample.model.deployments for s in d.services if d.public_ingress(s)}
    assert expected
    assert {p for p, _ in _probes(sample)} == expected
    # A service without public ingress gets none.
    private = [(d, s) for d in sample.model.deployments for s in d.services if not d.public_ingress(s)]
    assert private and all(common.probe_path(d.env, d.name, s.name) not in sample.result.files for d, s in private)


def test_probes_validate_against_the_strict_crd_schema(sample):
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    for path, doc in _probes(sample):
        assert list(validator.iter_errors(doc)) == [], path
    bad = {**doc, "spec": {**doc["spec"], "prober": {"address": "x"}}}
    assert list(validator.iter_errors(bad)), "the schema must be able to fail"


def test_probe_targets_the_public_url_through_the_blackbox_exporter(sample):
    exporter = sample.model.catalog.of("addon")["prometheus-blackbox-exporter"].spec
    address = f"{exporter.values['fullnameOverride']}.{exporter.namespace}.svc:{probes.PROBER_PORT}"
    for d in sample.model.deployments:
        for s in d.services:
            if not d.public_ingress(s):
                continue
            [doc] = load_yaml_docs(sample.result.files[common.probe_path(d.env, d.name, s.name)])
            assert doc["spec"]["prober"]["url"] == address
            [url] = doc["spec"]["targets"]["staticConfig"]["static"]
            assert url == f"https://{naming.hostname(s.name, d.name, d.environment)}{s.ingress.path}"
            assert doc["spec"]["targets"]["staticConfig"]["labels"] == {
                "tenant": d.name,
                "service": s.name,
                "environment": d.env,
                "tier": d.tier.name,
            }
            assert doc["spec"]["module"] == probes.MODULE


def test_prometheus_selects_probes_without_a_release_label(sample):
    prom = sample.model.catalog.of("addon")["kube-prometheus-stack"].spec
    assert prom.values["prometheus"]["prometheusSpec"]["probeSelectorNilUsesHelmValues"] is False
    assert "monitoring.coreos.com/Probe" in prom.provides_crds


def test_probes_are_whitelisted_and_synced_by_the_service_application(sample):
    projects = [doc for p, t in sample.result.files.items() if "/projects/" in p for doc in load_yaml_docs(t) if doc]
    tenant = [p for p in projects if p["metadata"]["name"] in {f"{d.name}-{d.env}" for d in sample.model.deployments}]
    assert tenant and all({"group": "monitoring.coreos.com", "kind": "Probe"} in p["spec"]["namespaceResourceWhitelist"] for p in tenant)
    text = b"".join(t for p, t in sample.result.files.items() if p.endswith("applicationsets.yaml")).decode()
    assert "probes/{{.tenant}}/{{.service}}.yaml" in text


def test_without_the_blackbox_exporter_the_render_fails_at_the_services_ingress(repo: Path):
    (repo / "catalog/addons/prometheus-blackbox-exporter.yaml").unlink()
    with pytest.raises(CatalogErrors) as caught:
        pipeline.build(repo)
    found = [e for e in caught.value.errors if "prober_endpoint" in e.message]
    assert found, [e.message for e in caught.value.errors][:3]
    web = (repo / "catalog/services/web.yaml").read_text().splitlines()
    ingress_line = next(i for i, line in enumerate(web, start=1) if line.startswith("ingress:"))
    assert any(str(e.location.path) == "catalog/services/web.yaml" and e.location.line == ingress_line for e in found)
