"""SLOs as catalog data: layering and provenance, bad input at its line, the PrometheusRule
alerts and the canary analysis derived from them (every PromQL parses, every object
validates against the strict vendored CRD schema, no data fails a canary)."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

import jsonschema
import promql_parser
import pytest

from generator import pipeline, vendor
from generator.targets import common
from helpers.catalog_edit import edit_yaml
from helpers.diagnostics import errors_of, line_of
from helpers.repo import snapshot
from helpers.yaml_docs import load_yaml_docs

CRDS = vendor.crd_schema_dir()


def schema(name: str) -> dict[str, Any]:
    return json.loads((CRDS / name).read_text(encoding="utf-8"))


def rules_in(text: bytes) -> list[dict[str, Any]]:
    """The PrometheusRules of an observability file (it also holds the service's ServiceMonitor)."""
    return [doc for doc in load_yaml_docs(text) if doc["kind"] == "PrometheusRule"]


def rule_docs(build: pipeline.Build) -> list[tuple[str, dict[str, Any]]]:
    return [(p, doc) for p, text in sorted(build.result.files.items()) if "/observability/" in p for doc in rules_in(text)]


def analysis_templates(build: pipeline.Build) -> list[tuple[str, dict[str, Any]]]:
    return [
        (p, doc)
        for p, text in sorted(build.result.files.items())
        if "/rollouts/" in p
        for doc in load_yaml_docs(text)
        if doc["kind"] == "AnalysisTemplate"
    ]


def parses(expr: str) -> None:
    # Argo CD substitutes {{args.x}} before querying; any string value stands in for it.
    promql_parser.parse(re.sub(r"\{\{args\.[a-z-]+\}\}", "0123abcd", expr))


# --- catalog: layering, provenance, bad input -----------------------------------------------


def test_slo_layers_like_every_setting_and_explain_names_the_line(companyos, repo):
    """defaults -> service -> tier -> environment -> tenant -> tenant x env, each with its line."""
    edit_yaml(
        repo / "catalog/tiers/regulated.yaml",
        lambda d: d.setdefault("settings", {}).setdefault("services", {}).update({"api": {"slo": {"availability": {"objective": 99.95}}}}),
    )
    key = "services.api.slo.availability.objective"
    result = companyos("explain", "acme", "prod", key, "--format", "json", cwd=repo)
    assert result.code == 0, result.err
    item = {i["key"]: i for i in json.loads(result.out)}[key]
    assert item["value"] == 99.95
    tier_line = line_of(repo / "catalog/tiers/regulated.yaml", "objective: 99.95")
    assert item["set_by"]["location"].startswith(f"catalog/tiers/regulated.yaml:{tier_line}:")
    assert [o["layer"] for o in item["overrode"]][-1] == "built-in defaults"
    assert [o["value"] for o in item["overrode"]] == [99.9, 99.9]  # the service file, then the default
    # Unset keys still come from the built-in layer.
    window = {
        i["key"]: i for i in json.loads(companyos("explain", "acme", "prod", "services.api.slo.window", "--format", "json", cwd=repo).out)
    }
    assert window["services.api.slo.window"]["set_by"]["layer"] == "built-in defaults"

    model = pipeline.build(repo).model
    assert model.deployment("acme", "prod").settings.services["api"].slo.availability.objective == 99.95
    # acme x prod's own override wins over the tier.
    edit_yaml(
        repo / "tenants/acme.yaml",
        lambda d: d["overrides"]["prod"].setdefault("services", {}).update({"api": {"slo": {"availability": {"objective": 99.99}}}}),
    )
    assert pipeline.build(repo).model.deployment("acme", "prod").settings.services["api"].slo.availability.objective == 99.99


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("availability", "objective"), 0, "greater than 0"),
        (("availability", "objective"), 100, "less than 100"),
        (("availability", "objective"), 100.5, "less than 100"),
        (("window",), "30 days", "not a Prometheus duration"),
        (("window",), "0d", "greater than 0"),
        (("availability", "good"), 'sum(rate(http_requests_total{code!~"5.."}[5m])', "not valid PromQL"),
        (("availability", "total"), "rate(http_requests_total[5m])", "plain series selector"),
        (("availability", "good"), 'http_requests_total{namespace="x"}', "adds the namespace"),
    ],
)
def test_bad_slo_is_an_error_at_its_line(companyos, repo, path, value, message):
    service = repo / "catalog/services/api.yaml"

    def plant(data: Any) -> None:
        node = data["defaults"]["slo"]
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value

    edit_yaml(service, plant)
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err
    assert snapshot(repo) == before
    errors = [e for e in errors_of(result.err) if e["path"] == "catalog/services/api.yaml"]
    needle = f"{path[-1]}:"
    assert any(int(e["line"]) == line_of(service, needle, after="slo:") and message in e["message"] for e in errors), result.err


def test_bad_burn_rate_window_in_a_tenant_layer_is_an_error_at_its_line(companyos, repo):
    tenant = repo / "tenants/globex.yaml"
    alerts = [{"severity": "page", "long_window": "1h", "short_window": "5mins", "factor": 14.4}]
    edit_yaml(
        tenant, lambda d: d.setdefault("settings", {}).setdefault("services", {}).update({"web": {"slo": {"burn_rate_alerts": alerts}}})
    )
    result = companyos("validate", cwd=repo)
    assert result.code == 2, result.out + result.err
    [error] = [e for e in errors_of(result.err) if "5mins" in e["message"]]
    assert (error["path"], int(error["line"])) == ("tenants/globex.yaml", line_of(tenant, "short_window: 5mins"))


def test_an_alert_that_can_never_fire_is_refused(companyos, repo):
    """factor x budget >= 1: an error ratio above 100% is impossible."""
    edit_yaml(repo / "catalog/services/web.yaml", lambda d: d["defaults"]["slo"].update({"canary_max_burn_rate": 25}))
    edit_yaml(repo / "catalog/services/web.yaml", lambda d: d["defaults"]["slo"]["availability"].update({"objective": 95}))
    result = companyos("validate", cwd=repo)
    assert result.code == 2 and "can never fire" in result.err, result.err


# --- PrometheusRule -----------------------------------------------------------------------------


def test_rules_validate_against_the_strict_crd_schema_and_every_expression_parses(sample):
    docs = rule_docs(sample)
    assert docs
    validator = jsonschema.Draft7Validator(schema("monitoring.coreos.com_v1_PrometheusRule.json"))
    expressions = 0
    for path, doc in docs:
        assert not list(validator.iter_errors(doc)), path
        for group in doc["spec"]["groups"]:
            for rule in group["rules"]:
                parses(rule["expr"])
                expressions += 1
    assert expressions > 100


def test_every_slo_service_of_every_deployment_gets_its_recording_windows_and_three_alerts(sample):
    files = sample.result.files
    for d in sample.model.deployments:
        for service in d.services:
            slo = d.settings.services[service.name].slo
            path = common.slo_rules_path(d.env, d.name, service.name)
            assert (path in files) == slo.enabled
            [doc] = rules_in(files[path])
            assert doc["metadata"]["namespace"] == d.namespace
            records = [r for g in doc["spec"]["groups"] for r in g["rules"] if "record" in r]
            windows = sorted({r["record"].rsplit("ratio_rate", 1)[1] for r in records})
            assert windows == sorted(["5m", "30m", "1h", "6h", "3d"])
            assert all(f'namespace="{d.namespace}"' in r["expr"] and r["labels"]["tenant"] == d.name for r in records)
            alerts = [r for g in doc["spec"]["groups"] for r in g["rules"] if "alert" in r]
            slis = 2 if slo.latency.enabled else 1
            assert len(alerts) == 3 * slis
            assert {a["labels"]["severity"] for a in alerts} == {"page", "ticket"}
            assert all({"tenant", "service", "severity", "slo"} <= a["labels"].keys() for a in alerts)
    # worker measures jobs, not requests, and has no latency SLI.
    worker = rules_in(files[common.slo_rules_path("prod", "acme", "worker")])[0]
    assert 'jobs_processed_total{outcome="success",namespace="tenant-acme",service="worker"}' in json.dumps(worker).replace('\\"', '"')
    assert not any("latency" in g["name"] for g in worker["spec"]["groups"])


def test_burn_rate_thresholds_are_the_budget_times_the_factor(sample):
    d = sample.model.deployment("acme", "prod")
    slo = d.settings.services["api"].slo
    [doc] = rules_in(sample.result.files[common.slo_rules_path("prod", "acme", "api")])
    alerts = [r for g in doc["spec"]["groups"] for r in g["rules"] if "alert" in r and r["labels"]["slo"] == "availability"]
    by_window = {a["labels"]["windows"]: a for a in alerts}
    assert set(by_window) == {"1h-5m", "6h-30m", "3d-6h"}
    for spec_alert in slo.burn_rate_alerts:
        alert = by_window[f"{spec_alert.long_window}-{spec_alert.short_window}"]
        limits = {float(x) for x in re.findall(r"> ([0-9.]+)\)", alert["expr"])}
        [limit] = limits  # the same threshold on both windows
        assert limit == pytest.approx((1 - slo.availability.objective / 100) * spec_alert.factor)
        assert f"ratio_rate{spec_alert.long_window}{{" in alert["expr"] and f"ratio_rate{spec_alert.short_window}{{" in alert["expr"]
    # 99.9% with the workbook factors: exactly 0.0144, 0.006 and 0.001 (decimal arithmetic, no 0.014400000000000001).
    assert sorted(re.findall(r"> ([0-9.]+)\)", " ".join(a["expr"] for a in alerts))) == sorted(
        ["0.0144"] * 2 + ["0.006"] * 2 + ["0.001"] * 2
    )


def test_changing_the_objective_moves_every_threshold(repo):
    edit_yaml(repo / "catalog/services/api.yaml", lambda d: d["defaults"]["slo"]["availability"].update({"objective": 99.5}))
    build = pipeline.build(repo)
    [doc] = rules_in(build.result.files[common.slo_rules_path("prod", "acme", "api")])
    page = next(
        r
        for g in doc["spec"]["groups"]
        for r in g["rules"]
        if r.get("labels", {}).get("windows") == "1h-5m" and r["labels"]["slo"] == "availability"
    )
    assert "> 0.072)" in page["expr"]  # 0.005 * 14.4
    template = next(doc for p, doc in analysis_templates(build) if p == "rendered/argocd/prod/rollouts/acme/api.yaml")
    assert template["spec"]["metrics"][0]["successCondition"].endswith("<= 0.072")


def test_rules_are_synced_by_the_services_application_and_whitelisted(sample):
    for env in sample.model.environments:
        text = sample.result.files[f"rendered/argocd/{env.name}/applicationsets.yaml"].decode()
        assert f"argocd/{env.name}/observability/{{{{.tenant}}}}/{{{{.service}}}}.yaml" in text
    projects = [doc for p, t in sample.result.files.items() if "/projects/" in p for doc in load_yaml_docs(t)]
    assert projects and all(
        {"group": "monitoring.coreos.com", "kind": "PrometheusRule"} in p["spec"]["namespaceResourceWhitelist"] for p in projects
    )


# --- canary analysis ------------------------------------------------------------------------------

CONDITION = re.compile(
    r"^(?P<success>len\(result\) > 0 && !isNaN\(result\[0\]\) && result\[0\] <= (?P<limit>[0-9.]+))$|"
    r"^(?P<failure>len\(result\) == 0 \|\| isNaN\(result\[0\]\) \|\| result\[0\] > (?P<flimit>[0-9.]+))$"
)


def evaluate(condition: str, result: list[float]) -> bool:
    """Argo Rollouts' expr semantics for exactly the two shapes the generator writes (any
    other shape fails the match, so a template change cannot slip past this evaluator)."""
    m = CONDITION.match(condition)
    assert m, f"unexpected condition shape: {condition}"
    if m["success"]:
        return len(result) > 0 and not math.isnan(result[0]) and result[0] <= float(m["limit"])
    return len(result) == 0 or math.isnan(result[0]) or result[0] > float(m["flimit"])


def test_analysis_templates_validate_and_their_queries_parse(sample):
    templates = analysis_templates(sample)
    assert templates
    validator = jsonschema.Draft7Validator(schema("argoproj.io_v1alpha1_AnalysisTemplate.json"))
    for path, doc in templates:
        assert not list(validator.iter_errors(doc)), path
        for metric in doc["spec"]["metrics"]:
            parses(metric["provider"]["prometheus"]["query"])
            assert metric["provider"]["prometheus"]["address"] == "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"


@pytest.mark.parametrize(("result", "passes"), [([], False), ([math.nan], False), ([0.0], True), ([0.0144], True), ([0.0145], False)])
def test_no_data_and_nan_fail_the_canary(sample, result, passes):
    [template] = [doc for p, doc in analysis_templates(sample) if p == "rendered/argocd/prod/rollouts/acme/api.yaml"]
    metric = next(m for m in template["spec"]["metrics"] if m["name"] == "availability-burn-rate")
    assert evaluate(metric["successCondition"], result) is passes
    assert evaluate(metric["failureCondition"], result) is (not passes)  # never inconclusive


def test_canary_thresholds_come_from_the_slo_and_baseline_only_where_asked(sample):
    for path, doc in analysis_templates(sample):
        _, _, env, _, tenant, service = path.removesuffix(".yaml").split("/")
        slo = sample.model.deployment(tenant, env).settings.services[service].slo
        metrics = {m["name"]: m for m in doc["spec"]["metrics"]}
        limit = Decimal(metrics["availability-burn-rate"]["successCondition"].rsplit(" ", 1)[1])
        assert float(limit) == pytest.approx((1 - slo.availability.objective / 100) * slo.canary_max_burn_rate)
        assert ("availability-vs-baseline" in metrics) == slo.compare_baseline
        assert ("latency-burn-rate" in metrics) == slo.latency.enabled
        for m in metrics.values():
            query = m["provider"]["prometheus"]["query"]
            assert 'rollouts_pod_template_hash="{{args.canary-hash}}"' in query
            assert ("{{args.stable-hash}}" in query) == m["name"].endswith("-vs-baseline")
    api = [doc for p, doc in analysis_templates(sample) if p.endswith("/api.yaml")]
    assert api and all(any(m["name"] == "availability-vs-baseline" for m in d["spec"]["metrics"]) for d in api)


def test_rollout_passes_the_pod_hashes_and_aborts_on_failure(sample):
    rollouts = [doc for p, t in sample.result.files.items() if "/rollouts/" in p for doc in load_yaml_docs(t) if doc["kind"] == "Rollout"]
    assert rollouts
    validator = jsonschema.Draft7Validator(schema("argoproj.io_v1alpha1_Rollout.json"))
    for doc in rollouts:
        assert not list(validator.iter_errors(doc))
        analysis = doc["spec"]["strategy"]["canary"]["analysis"]
        assert analysis["args"] == [
            {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
            {"name": "stable-hash", "valueFrom": {"podTemplateHashValue": "Stable"}},
        ]
