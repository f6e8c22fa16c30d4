"""Grafana dashboards (issue 16 item 4): one ConfigMap per tenant, environment and scraped
service, labelled for the Grafana add-on's sidecar, holding a dashboard whose every PromQL
expression parses and reads the series the SLO rules record; the Grafana add-on really loads
that label from every namespace, and without it the render fails the contract check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import promql_parser
import pytest

from generator import pipeline
from generator.errors import CatalogErrors
from generator.targets import common, dashboards
from helpers.catalog_edit import edit_yaml
from helpers.yaml_docs import load_yaml_docs


def _boards(build: pipeline.Build) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, doc) for path, text in sorted(build.result.files.items()) if "/dashboards/" in path for doc in load_yaml_docs(text) if doc
    ]


def _dashboard(configmap: dict[str, Any]) -> dict[str, Any]:
    [text] = configmap["data"].values()
    return json.loads(text)


def test_every_scraped_service_of_every_deployment_has_a_dashboard(sample):
    expected = {
        common.dashboard_path(d.env, d.name, s.name)
        for d in sample.model.deployments
        for s in d.services
        if common.scraped(d, s) is not None
    }
    assert expected
    assert {p for p, _ in _boards(sample)} == expected


def test_configmaps_validate_and_carry_the_sidecar_label(sample):
    versions = {e.name: e.kubernetes_version for e in sample.model.environments}
    for path, doc in _boards(sample):
        env = path.split("/")[2]
        kubernetes_validate.validate(doc, versions[env], strict=True)
        assert doc["metadata"]["labels"][dashboards.LABEL] == dashboards.LABEL_VALUE
        tenant = path.split("/")[4]
        assert doc["metadata"]["namespace"] == f"tenant-{tenant}"
        assert doc["metadata"]["annotations"][dashboards.FOLDER_ANNOTATION] == tenant


def test_every_promql_expression_parses_and_the_logs_panel_queries_loki(sample):
    parsed = 0
    for _, doc in _boards(sample):
        board = _dashboard(doc)
        assert len(board["uid"]) <= 40
        for panel in board["panels"]:
            for target in panel["targets"]:
                if panel["datasource"]["type"] == "prometheus":
                    promql_parser.parse(target["expr"])
                    parsed += 1
                else:
                    assert panel["datasource"] == {"type": "loki", "uid": "loki"}
                    assert doc["metadata"]["namespace"] in target["expr"]
    assert parsed > 100
    with pytest.raises(ValueError):  # the parser can fail: a broken expression would be caught
        promql_parser.parse("sum(rate(http_requests_total[5m])")


def test_burn_rate_panels_read_the_series_the_prometheus_rule_records(sample):
    recorded: set[str] = set()
    for path, text in sample.result.files.items():
        if "/observability/" in path:
            for doc in load_yaml_docs(text):
                if doc and doc["kind"] == "PrometheusRule":
                    recorded |= {r["record"] for g in doc["spec"]["groups"] for r in g["rules"] if "record" in r}
    read = set()
    for _, doc in _boards(sample):
        for panel in _dashboard(doc)["panels"]:
            if "burn rate" in panel["title"]:
                expr = promql_parser.parse(panel["targets"][0]["expr"])
                read.add(expr.lhs.name)
    assert read and read <= recorded


def test_dashboard_uids_are_unique(sample):
    uids = [_dashboard(doc)["uid"] for _, doc in _boards(sample)]
    assert len(uids) == len(set(uids))


def test_dashboard_json_is_canonical_compact_json(sample):
    """The dashboard is stored in one canonical form (sorted keys, no whitespace): cheap to
    encode (the C encoder; ``indent`` falls back to pure Python, once the largest cost of a
    big render), and the same board always gives the same bytes."""
    boards = _boards(sample)
    assert boards
    for _, doc in boards:
        [text] = doc["data"].values()
        board = json.loads(text)
        assert text == json.dumps(board, separators=(",", ":"), sort_keys=True)


def test_grafana_addon_loads_the_label_from_every_namespace_with_the_three_data_sources(sample):
    grafana = sample.model.catalog.of("addon")["grafana"].spec
    board = grafana.values["sidecar"]["dashboards"]
    assert (board["label"], board["labelValue"], board["searchNamespace"]) == (dashboards.LABEL, dashboards.LABEL_VALUE, "ALL")
    sources = {d["uid"]: d for d in grafana.values["datasources"]["datasources.yaml"]["datasources"]}
    assert set(sources) == {"prometheus", "loki", "tempo"}
    prom = sample.model.catalog.of("addon")["kube-prometheus-stack"].spec
    assert sources["prometheus"]["url"] == f"http://{prom.values['fullnameOverride']}-prometheus.{prom.namespace}.svc:9090"


def test_without_a_grafana_that_watches_every_namespace_the_render_fails(repo: Path):
    edit_yaml(
        repo / "catalog/addons/grafana.yaml", lambda d: d["values"]["sidecar"]["dashboards"].update({"searchNamespace": "monitoring"})
    )
    with pytest.raises(CatalogErrors) as caught:
        pipeline.build(repo)
    messages = [e.message for e in caught.value.errors]
    assert any("dashboard_sidecar 'grafana_dashboard=1'" in m for m in messages), messages[:3]
    # Reported at the service whose dashboard needs it, not at a rendered file.
    assert all(str(e.location.path).startswith("catalog/services/") for e in caught.value.errors if "dashboard_sidecar" in e.message)


def test_dashboards_sync_with_the_service_application(sample):
    # The ApplicationSet's extras source includes the dashboard path of each (tenant, service).
    text = b"".join(t for p, t in sample.result.files.items() if p.endswith("applicationsets.yaml")).decode()
    assert "dashboards/{{.tenant}}/{{.service}}.yaml" in text
