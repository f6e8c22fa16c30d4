"""ServiceMonitors: every service with an SLO is scraped, so its rules and its canary analysis
see data. Each object validates against the strict vendored CRD schema, selects the Service
the stakater chart renders from our Helm values, copies the Argo Rollouts pod-template hash the
AnalysisTemplates select on, caps samples per scrape from the catalog, and is allowed by the
tenant's AppProject and selected by the add-on's Prometheus."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser
import pytest
import yaml

from generator import pipeline, vendor
from generator.errors import CatalogErrors
from generator.targets import common
from generator.targets.argocd import rollouts
from generator.targets.argocd import target as argocd_target
from helpers.catalog_edit import edit_yaml, override
from helpers.diagnostics import errors_of, line_of
from helpers.repo import REPO, snapshot
from helpers.yaml_docs import load_yaml_docs

SCHEMA = vendor.crd_schema_dir() / "monitoring.coreos.com_v1_ServiceMonitor.json"
#: The chart the sample's services use (catalog/platform.yaml `charts`), read at this tag.
CHART = "application-9.2.0"


def monitors(build: pipeline.Build) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, doc)
        for path, text in sorted(build.result.files.items())
        if path.endswith(".yaml")
        for doc in load_yaml_docs(text)
        if isinstance(doc, dict) and doc.get("kind") == "ServiceMonitor"
    ]


def monitor_of(build: pipeline.Build, tenant: str, env: str, service: str) -> dict[str, Any]:
    [doc] = [d for d in load_yaml_docs(build.result.files[common.slo_rules_path(env, tenant, service)]) if d["kind"] == "ServiceMonitor"]
    return doc


def chart_service(values: dict[str, Any], release: str) -> dict[str, Any]:
    """The Service stakater's ``application`` chart 9.2.0 renders from ``values``, as its
    templates derive it (templates/service.yaml and _helpers.tpl at tag v9.2.0, commit
    eadcb67c, the commit generator/vendor/helm/PROVENANCE.md names):

    * ``metadata.name`` is ``application.name``: ``applicationName``, else the release name,
      truncated to 63 characters, trailing ``-`` trimmed;
    * ``metadata.labels`` is ``application.labels`` (``app.kubernetes.io/name`` = that name,
      ``helm.sh/chart`` = ``application-9.2.0``, ``app.kubernetes.io/managed-by`` = ``Helm``,
      ``app.kubernetes.io/instance`` = the release, ``app.kubernetes.io/version`` = the image
      tag with anything but ``[a-zA-Z0-9_.-]`` replaced by ``-``, then ``additionalLabels``),
      followed by ``service.additionalLabels``;
    * ``spec.ports`` is ``service.ports`` verbatim; the Service exists only with ``service.enabled``.
    """
    name = (values.get("applicationName") or release)[:63].rstrip("-")
    labels = {
        "app.kubernetes.io/name": name,
        "helm.sh/chart": CHART,
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/instance": release,
    }
    version = re.sub(r"[^a-zA-Z0-9_.\-]", "-", str(values["deployment"]["image"].get("tag") or ""))[:63].rstrip("-")
    if version:
        labels["app.kubernetes.io/version"] = version
    labels.update(values.get("additionalLabels") or {})
    labels.update(values["service"].get("additionalLabels") or {})
    return {"enabled": values["service"]["enabled"], "name": name, "labels": labels, "ports": values["service"].get("ports") or []}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items()) and not selector.get("matchExpressions")


def prometheus_label(name: str) -> str:
    """Prometheus Operator copies a pod or Service label to the target with every character
    outside ``[a-zA-Z0-9_]`` replaced by ``_`` (its ``sanitizeLabelName``)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


# --- one per scraped service, valid -----------------------------------------------------------


def test_every_slo_service_of_every_deployment_has_exactly_one_service_monitor(sample):
    found = monitors(sample)
    by_key = {}
    for path, doc in found:
        key = (doc["metadata"]["namespace"], doc["metadata"]["name"], path)
        assert key not in by_key
        by_key[key] = doc
    wanted = set()
    for d in sample.model.deployments:
        for service in d.services:
            if d.settings.services[service.name].slo.enabled:
                wanted.add((d.namespace, service.name, common.slo_rules_path(d.env, d.name, service.name)))
    assert wanted and {(ns, name, path) for ns, name, path in by_key} == wanted
    # Unique per namespace within a cluster (one cluster per environment): no two objects collide.
    per_cluster = [(path.split("/")[2], ns, name) for ns, name, path in by_key]
    assert len(per_cluster) == len(set(per_cluster))


def test_service_monitors_validate_against_the_strict_crd_schema(sample):
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    found = monitors(sample)
    assert found
    for path, doc in found:
        assert not list(validator.iter_errors(doc)), path
    # The schema is strict: a typo and a wrong type are caught.
    _, doc = found[0]
    assert list(validator.iter_errors({**doc, "spec": {**doc["spec"], "sampleLimits": 5}}))
    assert list(validator.iter_errors({**doc, "spec": {**doc["spec"], "sampleLimit": "5000"}}))


# --- selects the chart's Service, scrapes the metrics port ---------------------------------------


def test_selector_matches_the_service_the_chart_renders_from_our_values(sample):
    files = sample.result.files
    checked = 0
    for d in sample.model.deployments:
        for service in d.services:
            if not d.settings.services[service.name].slo.enabled:
                continue
            values = yaml.safe_load(files[common.values_path(d.env, d.name, service.name)])
            # Argo CD's release name is the Application's name; the selector must not depend on it.
            for release in ("release-a", f"{d.env}-{d.name}-{service.name}"):
                svc = chart_service(values, release)
                monitor = monitor_of(sample, d.name, d.env, service.name)
                assert svc["enabled"]
                assert selects(monitor["spec"]["selector"], svc["labels"]), (d.name, d.env, service.name)
                assert (
                    monitor["spec"]["namespaceSelector"]
                    == {"matchNames": [d.namespace]}
                    == {"matchNames": [monitor["metadata"]["namespace"]]}
                )
                # The metrics port is a named port of the Service (and of the container it targets).
                [endpoint] = monitor["spec"]["endpoints"]
                assert endpoint["port"] in {p["name"] for p in svc["ports"]}
                assert endpoint["port"] in {p["name"] for p in values["deployment"]["ports"]}
                assert endpoint["path"] == "/metrics"
            # Neither the image tag nor the chart version is selected on: a release would orphan the scrape.
            assert (
                not {"app.kubernetes.io/version", "helm.sh/chart", "app.kubernetes.io/instance"}
                & monitor["spec"]["selector"]["matchLabels"].keys()
            )
            # The chart's own ServiceMonitor (same name) stays off.
            assert not (values.get("serviceMonitor") or {}).get("enabled", False)
            checked += 1
    assert checked > 10
    # worker serves metrics on its port named `metrics`, api on `http`.
    assert monitor_of(sample, "acme", "prod", "worker")["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor_of(sample, "acme", "prod", "api")["spec"]["endpoints"][0]["port"] == "http"


def test_a_selector_that_misses_the_service_is_caught(sample):
    """The check above can fail: another tenant's Service, or one without our labels, is not selected."""
    values = yaml.safe_load(sample.result.files[common.values_path("prod", "acme", "api")])
    selector = monitor_of(sample, "acme", "prod", "api")["spec"]["selector"]
    assert selects(selector, chart_service(values, "r")["labels"])
    other = {**values, "additionalLabels": {**values["additionalLabels"], "companyos.io/tenant": "globex"}}
    assert not selects(selector, chart_service(other, "r")["labels"])
    assert not selects(selector, chart_service({**values, "additionalLabels": None}, "r")["labels"])
    assert not selects(selector, chart_service({**values, "applicationName": "web"}, "r")["labels"])


# --- feeds the SLO rules and the canary analysis -------------------------------------------------


def _matchers(expr: str) -> list[dict[str, str]]:
    """Every vector selector's label matchers of ``expr`` (Argo CD placeholders replaced)."""
    text = re.sub(r"\{\{args\.[a-z-]+\}\}", "0123abcd", expr)
    found = re.findall(r"\{([^{}]*)\}", promql_parser.parse(text).prettify())
    return [dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=~?\s*"([^"]*)"', body)) for body in found]


def test_pod_target_labels_carry_the_hash_the_canary_analysis_selects_on(sample):
    templates = [
        (p, doc)
        for p, text in sorted(sample.result.files.items())
        if "/rollouts/" in p
        for doc in load_yaml_docs(text)
        if doc["kind"] == "AnalysisTemplate"
    ]
    assert templates
    for path, template in templates:
        _, env, _, tenant, file = path.split("/")[1:6]
        service = file.removesuffix(".yaml")
        monitor = monitor_of(sample, tenant, env, service)
        labels = {prometheus_label(label) for label in monitor["spec"]["podTargetLabels"]}
        assert "rollouts-pod-template-hash" in monitor["spec"]["podTargetLabels"]
        assert rollouts.HASH_LABEL in labels
        # Every series the analysis reads is scoped by labels the scrape produces: `namespace`
        # and `service` (the Service's name, which the chart takes from applicationName) come
        # from the Prometheus Operator's target relabeling, the hash from podTargetLabels.
        values = yaml.safe_load(sample.result.files[common.values_path(env, tenant, service)])
        service_name = chart_service(values, "r")["name"]
        produced = {"namespace": monitor["metadata"]["namespace"], "service": service_name}
        for metric in template["spec"]["metrics"]:
            selectors = _matchers(metric["provider"]["prometheus"]["query"])
            assert selectors
            for matchers in selectors:
                assert matchers[rollouts.HASH_LABEL] == "0123abcd", path
                assert rollouts.HASH_LABEL in labels
                for label, value in produced.items():
                    assert matchers[label] == value, (path, label)
    # The tenant labels reach every series as target labels (Alertmanager routing, cost reports).
    monitor = monitor_of(sample, "acme", "prod", "api")
    assert {prometheus_label(label) for label in monitor["spec"]["targetLabels"]} == {
        "companyos_io_tenant",
        "companyos_io_tier",
        "companyos_io_environment",
    }


# --- per-series cap from the catalog ---------------------------------------------------------------


def test_sample_limit_has_a_default_and_moves_with_a_tenant_override(companyos, repo):
    before = pipeline.build(repo)
    default = before.model.deployment("acme", "prod").settings.services["api"].metrics.sample_limit
    assert monitor_of(before, "acme", "prod", "api")["spec"]["sampleLimit"] == default == 5000
    assert "metricRelabelings" not in monitor_of(before, "acme", "prod", "api")["spec"]["endpoints"][0]

    path = override(
        repo, "acme", "prod", {"services": {"api": {"metrics": {"sample_limit": 1234, "drop_labels": ["user_id", "request_id"]}}}}
    )
    after = pipeline.build(repo)
    api = monitor_of(after, "acme", "prod", "api")
    assert api["spec"]["sampleLimit"] == 1234
    assert api["spec"]["endpoints"][0]["metricRelabelings"] == [{"action": "labeldrop", "regex": "request_id|user_id"}]
    # Only that tenant, environment and service moved.
    assert monitor_of(after, "acme", "dev", "api")["spec"]["sampleLimit"] == 5000
    assert monitor_of(after, "acme", "prod", "web")["spec"]["sampleLimit"] == 5000
    assert monitor_of(after, "globex", "prod", "api")["spec"]["sampleLimit"] == 5000
    # explain names the line that set it.
    key = "services.api.metrics.sample_limit"
    result = companyos("explain", "acme", "prod", key, "--format", "json", cwd=repo)
    assert result.code == 0, result.err
    item = {i["key"]: i for i in json.loads(result.out)}[key]
    assert item["value"] == 1234
    assert item["set_by"]["location"].startswith(f"tenants/acme.yaml:{line_of(path, 'sample_limit: 1234')}:")


def test_a_service_file_sets_its_own_metrics_endpoint_and_limit(repo):
    edit_yaml(repo / "catalog/services/api.yaml", lambda d: d.update({"metrics": {"port": "http", "path": "/internal/metrics"}}))
    edit_yaml(repo / "catalog/services/api.yaml", lambda d: d["defaults"].update({"metrics": {"sample_limit": 20000}}))
    build = pipeline.build(repo)
    api = monitor_of(build, "hooli", "dev", "api")
    assert api["spec"]["endpoints"][0]["path"] == "/internal/metrics"
    assert api["spec"]["sampleLimit"] == 20000


def test_metrics_without_an_slo_are_scraped_and_neither_means_no_file(repo):
    edit_yaml(repo / "catalog/services/worker.yaml", lambda d: d["defaults"]["slo"].update({"enabled": False}))
    build = pipeline.build(repo)
    assert common.slo_rules_path("prod", "acme", "worker") not in build.result.files
    edit_yaml(repo / "catalog/services/worker.yaml", lambda d: d.update({"metrics": {"port": "metrics"}}))
    build = pipeline.build(repo)
    [doc] = load_yaml_docs(build.result.files[common.slo_rules_path("prod", "acme", "worker")])
    assert doc["kind"] == "ServiceMonitor"


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("le", "may not be dropped"),
        ("rollouts_pod_template_hash", "may not be dropped"),
        ("service", "may not be dropped"),
        ("user-id", "not a Prometheus label"),
    ],
)
def test_dropping_a_label_the_slo_needs_is_an_error_at_its_line(companyos, repo, label, message):
    path = override(repo, "globex", None, {"services": {"web": {"metrics": {"drop_labels": [label]}}}})
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err
    assert snapshot(repo) == before
    [error] = [e for e in errors_of(result.err) if message in e["message"]]
    assert (error["path"], int(error["line"])) == ("tenants/globex.yaml", line_of(path, label, after="drop_labels"))


def test_a_metrics_port_the_service_does_not_have_is_an_error_at_its_line(companyos, repo):
    service = repo / "catalog/services/web.yaml"
    edit_yaml(service, lambda d: d.update({"metrics": {"port": "metrics"}}))
    result = companyos("validate", cwd=repo)
    assert result.code == 2, result.out + result.err
    [error] = [e for e in errors_of(result.err) if "metrics port 'metrics'" in e["message"]]
    assert error["path"] == "catalog/services/web.yaml" and int(error["line"]) == line_of(service, "port: metrics", after="metrics:")
    assert "http" in error["message"]


# --- allowed by Argo CD, selected by Prometheus ----------------------------------------------------


def test_tenant_app_projects_whitelist_service_monitors(sample, monkeypatch):
    projects = [doc for p, t in sample.result.files.items() if "/projects/" in p for doc in load_yaml_docs(t)]
    tenant_projects = [p for p in projects if p["metadata"]["name"] in {f"{d.name}-{d.env}" for d in sample.model.deployments}]
    assert tenant_projects
    for project in tenant_projects:
        assert {"group": "monitoring.coreos.com", "kind": "ServiceMonitor"} in project["spec"]["namespaceResourceWhitelist"]
    # Without the whitelist entry the contract check refuses the render (Argo CD would refuse the sync).
    monkeypatch.setattr(argocd_target, "TENANT_KINDS", tuple(k for k in argocd_target.TENANT_KINDS if k[1] != "ServiceMonitor"))
    with pytest.raises(CatalogErrors, match="ServiceMonitor"):
        pipeline.build(REPO)


def test_the_prometheus_add_on_selects_monitors_without_a_release_label(sample):
    addon = yaml.safe_load((REPO / "catalog/addons/kube-prometheus-stack.yaml").read_text(encoding="utf-8"))
    spec = addon["values"]["prometheus"]["prometheusSpec"]
    # With the chart's default (true) Prometheus selects only ServiceMonitors labelled release=<release>.
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert not spec.get("serviceMonitorSelector") and not spec.get("serviceMonitorNamespaceSelector")
    assert "monitoring.coreos.com/ServiceMonitor" in addon["provides_crds"]
    for _, doc in monitors(sample):
        assert "release" not in doc["metadata"]["labels"]
    # The rendered add-on Application carries the setting.
    rendered = [t.decode() for p, t in sample.result.files.items() if p.endswith("/addons.yaml")]
    assert rendered and all("serviceMonitorSelectorNilUsesHelmValues: false" in t for t in rendered)


def test_rendered_tree_holds_the_monitors_where_the_application_syncs_them(sample):
    for env in sample.model.environments:
        text = sample.result.files[f"rendered/argocd/{env.name}/applicationsets.yaml"].decode()
        assert f"argocd/{env.name}/observability/{{{{.tenant}}}}/{{{{.service}}}}.yaml" in text
    found = monitors(sample)
    assert found and all(Path(p).parts[3] == "observability" for p, _ in found)
