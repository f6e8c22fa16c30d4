"""The tenant NetworkPolicies open exactly the telemetry paths (issue 16, docs/observability.md):
OTLP to the node-local collector's pods (4317/4318 only), Prometheus's pods to the scraped
port only, the Kubernetes API only for pods that get a flagd sidecar; nothing from another
tenant. Evaluated on the rendered files with a small NetworkPolicy evaluator (allow-lists add
up; a pod selected by no policy of a direction is open in that direction, which never happens
here: ``default-deny`` selects every pod)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from generator import pipeline
from generator.errors import CatalogErrors
from generator.model import addons as model_addons
from generator.targets.argocd import namespaces
from helpers.catalog_edit import edit_yaml
from helpers.yaml_docs import load_yaml_docs

K8S_VERSION = "1.30.0"
MONITORING = "monitoring"


def _policies(build: pipeline.Build, env: str, tenant: str) -> list[dict[str, Any]]:
    docs = load_yaml_docs(build.result.files[f"rendered/argocd/{env}/namespaces/{tenant}.yaml"])
    return [d for d in docs if d and d["kind"] == "NetworkPolicy"]


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _peer_admits(peer: dict[str, Any], own_ns: str, ns: str, labels: dict[str, str], ip: str | None) -> bool:
    if "ipBlock" in peer:
        if ip is None:
            return False
        block = peer["ipBlock"]
        addr = ipaddress.ip_address(ip)
        return addr in ipaddress.ip_network(block["cidr"]) and not any(addr in ipaddress.ip_network(x) for x in block.get("except", []))
    if "namespaceSelector" in peer:
        if not _matches(peer["namespaceSelector"], {"kubernetes.io/metadata.name": ns}):
            return False
    elif ns != own_ns:
        return False
    return _matches(peer.get("podSelector") or {}, labels)


def allowed(
    policies: list[dict[str, Any]],
    direction: str,
    pod: dict[str, str],
    peer_ns: str,
    peer_labels: dict[str, str],
    port: int,
    ip: str | None = None,
) -> bool:
    """Whether ``pod`` (its labels, in the policies' namespace) may talk to/from the peer on ``port``."""
    key, field = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    selecting = [p for p in policies if direction in p["spec"]["policyTypes"] and _matches(p["spec"]["podSelector"], pod)]
    assert selecting, "default-deny selects every pod"
    own = policies[0]["metadata"]["namespace"]
    for policy in selecting:
        for rule in policy["spec"].get(key, []):
            ports = rule.get("ports")
            if ports is not None and not any(p["port"] == port for p in ports):
                continue
            peers = rule.get(field)
            if peers is None or any(_peer_admits(peer, own, peer_ns, peer_labels, ip) for peer in peers):
                return True
    return False


def _collector(build: pipeline.Build, env: str) -> tuple[str, dict[str, str]]:
    found = model_addons.collector(build.model.catalog, env)
    assert found is not None
    return found.namespace, model_addons.collector_selector(found)


def test_the_policies_validate(sample):
    for d in sample.model.deployments:
        for policy in _policies(sample, d.env, d.name):
            kubernetes_validate.validate(policy, K8S_VERSION, strict=True)


def test_services_reach_the_collector_on_the_otlp_ports_only(sample):
    checked = 0
    for d in sample.model.deployments:
        ns, collector = _collector(sample, d.env)
        policies = _policies(sample, d.env, d.name)
        for service in d.services:
            pod = {"app.kubernetes.io/name": service.name}
            for port in (4317, 4318):
                assert allowed(policies, "Egress", pod, ns, collector, port), (d.env, d.name, service.name, port)
                checked += 1
            # not another port of the collector, not another pod of its namespace (Loki, Grafana, Prometheus)
            assert not allowed(policies, "Egress", pod, ns, collector, 8888)
            assert not allowed(policies, "Egress", pod, ns, {"app.kubernetes.io/name": "loki"}, 4318)
            assert not allowed(policies, "Egress", pod, ns, {"app.kubernetes.io/name": "grafana"}, 3000)
            # a same-labelled pod in another namespace is not the collector
            assert not allowed(policies, "Egress", pod, "default", collector, 4318)
        if any(s.migrations is not None and s.uses_database for s in d.services):
            job = {"app.kubernetes.io/name": next(f"{s.name}-migrate" for s in d.services if s.migrations is not None and s.uses_database)}
            assert not allowed(policies, "Egress", job, ns, collector, 4318)  # a migration sends no telemetry
    assert checked


def test_prometheus_reaches_the_scraped_port_only(sample):
    for d in sample.model.deployments:
        policies = _policies(sample, d.env, d.name)
        prometheus = {"app.kubernetes.io/name": "prometheus"}
        for service in d.services:
            pod = {"app.kubernetes.io/name": service.name}
            endpoint = service.metrics_endpoint() if (service.metrics or d.settings.services[service.name].slo.enabled) else None
            scraped = next((p.port for p in service.ports if endpoint is not None and p.name == endpoint.port), None)
            for port in service.ports:
                assert allowed(policies, "Ingress", pod, MONITORING, prometheus, port.port) is (port.port == scraped), (
                    d.name,
                    service.name,
                )
                # nothing else of the monitoring namespace (Grafana, Loki, the blackbox exporter)
                for other in ("grafana", "loki", "prometheus-blackbox-exporter", "opentelemetry-collector"):
                    assert not allowed(policies, "Ingress", pod, MONITORING, {"app.kubernetes.io/name": other}, port.port)


def test_only_pods_with_flagd_reach_the_kubernetes_api(sample):
    seen = {True: 0, False: 0}
    for d in sample.model.deployments:
        policies = _policies(sample, d.env, d.name)
        api = namespaces.kubernetes_service_ip(sample.model, d)
        for service in d.services:
            flags = bool(d.settings.services[service.name].flags)
            pod = {"app.kubernetes.io/name": service.name}
            assert allowed(policies, "Egress", pod, "", {}, 443, ip=api) is flags, (d.name, service.name)
            assert not allowed(policies, "Egress", pod, "", {}, 6443, ip=api)
            seen[flags] += 1
    assert seen[True] and seen[False], "the sample has services with and without flags"


def test_nothing_from_or_to_another_tenant(sample):
    for env in sample.model.environments:
        tenants = sample.model.in_environment(env.name)
        for d in tenants:
            policies = _policies(sample, env.name, d.name)
            for other in tenants:
                if other.name == d.name:
                    continue
                for service in d.services:
                    pod = {"app.kubernetes.io/name": service.name}
                    for peer in other.services:
                        labels = {"app.kubernetes.io/name": peer.name}
                        for port in [*(p.port for p in service.ports), *(p.port for p in peer.ports), 4317, 4318]:
                            assert not allowed(policies, "Ingress", pod, other.namespace, labels, port)
                            assert not allowed(policies, "Egress", pod, other.namespace, labels, port)


def _drop_collector_service(repo: Path) -> None:
    edit_yaml(repo / "catalog/addons/opentelemetry-collector.yaml", lambda data: data["values"].pop("service"))


def test_a_collector_without_its_service_fails_the_render_at_the_catalog(repo):
    # Plant the fault: the DaemonSet renders no Service, yet the values and policies name it.
    _drop_collector_service(repo)
    with pytest.raises(CatalogErrors) as caught:
        pipeline.build(repo)
    found = [e for e in caught.value.errors if "otlp_endpoint" in e.message]
    assert found, [e.message for e in caught.value.errors][:3]
    assert all(e.location.line >= 1 for e in found)


def test_without_a_collector_no_otlp_path_and_no_endpoint(repo):
    (repo / "catalog/addons/opentelemetry-collector.yaml").unlink()
    build = pipeline.build(repo)
    for d in build.model.deployments:
        for policy in _policies(build, d.env, d.name):
            for rule in policy["spec"].get("egress", []):
                assert {p["port"] for p in rule.get("ports", [])}.isdisjoint({4317, 4318}), policy["metadata"]["name"]
        for service in d.services:
            values = build.result.files[f"rendered/helm/{d.env}/{d.name}/{service.name}.yaml"].decode()
            assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in values
