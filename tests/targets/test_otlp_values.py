"""Services send OTLP to the node-local collector (issue 16): the Helm values carry the
OpenTelemetry SDK variables, the endpoint is the address the collector add-on provides (a
contract), and the collector's Service keeps traffic on the node (``internalTrafficPolicy``
is the chart's default for a DaemonSet once ``service.enabled`` is set)."""

from __future__ import annotations

from typing import Any

import yaml

from generator import pipeline
from generator.model import addons as model_addons
from generator.targets import addons as addons_target
from helpers.catalog_edit import edit_yaml


def _env(values: dict[str, Any]) -> dict[str, str]:
    return {k: v["value"] for k, v in values["deployment"]["env"].items() if "value" in v}


def test_every_service_names_the_collector_and_itself(sample):
    for d in sample.model.deployments:
        collector = model_addons.collector(sample.model.catalog, d.env)
        assert collector is not None
        for service in d.services:
            values = yaml.safe_load(sample.result.files[f"rendered/helm/{d.env}/{d.name}/{service.name}.yaml"])
            env = _env(values)
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://opentelemetry-collector.{collector.namespace}.svc:4318"
            assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
            assert env["OTEL_SERVICE_NAME"] == service.name
            attributes = dict(pair.split("=", 1) for pair in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
            assert attributes == {"deployment.environment.name": d.env, "tenant": d.name, "tier": d.tier.name}


def test_the_endpoint_is_a_contract_the_collector_provides(sample):
    provided = {(c.scope, c.name) for _, provides, _, _ in sample.result.declared for c in provides if c.kind == "otlp_endpoint"}
    consumed = {(c.scope, c.name) for _, _, consumes, _ in sample.result.declared for c in consumes if c.kind == "otlp_endpoint"}
    assert consumed and consumed <= provided
    for env in sample.model.environments:
        assert (env.name, f"http://opentelemetry-collector.monitoring.svc:{model_addons.OTLP_HTTP_PORT}") in provided


def test_the_collector_serves_otlp_on_a_service(sample):
    for env in sample.model.environments:
        docs = yaml.safe_load_all(sample.result.files[addons_target.addons_path(env.name)])
        [app] = [
            d for d in docs if d["kind"] == "Application" and d["metadata"]["labels"].get("companyos.io/addon") == "opentelemetry-collector"
        ]
        values = app["spec"]["source"]["helm"]["valuesObject"]
        assert values["mode"] == "daemonset" and values["service"]["enabled"] is True
        assert "internalTrafficPolicy" not in values["service"]  # the chart's DaemonSet default: Local


def test_a_renamed_collector_moves_the_endpoint_with_it(repo):
    edit_yaml(repo / "catalog/addons/opentelemetry-collector.yaml", lambda data: data["values"].__setitem__("fullnameOverride", "otel"))
    build = pipeline.build(repo)
    d = build.model.deployments[0]
    values = yaml.safe_load(build.result.files[f"rendered/helm/{d.env}/{d.name}/{d.services[0].name}.yaml"])
    assert _env(values)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel.monitoring.svc:4318"
