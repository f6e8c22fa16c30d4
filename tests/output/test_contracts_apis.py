"""Contracts on what add-ons serve besides CRDs: every HorizontalPodAutoscaler consumes the
resource metrics API (``metrics.k8s.io``, registered by the metrics-server add-on) and every
tenant Ingress its IngressClass (created by the LB controller add-on). Plant the missing
producer in a scratch catalog and the render fails at the catalog line of the consumer."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from generator import pipeline
from generator.output import contracts


def test_the_sample_checks_both_kinds_and_finds_their_producers(sample: pipeline.Build) -> None:
    found = [link for link in contracts.links(sample.result.declared) if link.contract.kind in ("api_service", "ingress_class")]
    statuses = Counter((link.contract.kind, link.contract.name, link.status) for link in found)
    assert statuses[("api_service", "metrics.k8s.io", "ok")] > 0, statuses
    assert statuses[("ingress_class", sample.model.platform.ingress_class, "ok")] > 0, statuses
    assert {s for _, _, s in statuses} == {"ok"}
    consumers = {link.consumer.split("/")[1] for link in found if link.contract.kind == "api_service"}
    assert {"helm", "argocd"} <= consumers  # the chart's HPAs and the Rollouts' HPAs
    for link in found:
        assert all("rendered/argocd/" in p and p.endswith("/addons.yaml") for p in link.producers), link


def _failing(companyos: Any, repo: Path, needle: str) -> list[str]:
    before = {p: p.read_bytes() for p in (repo / "rendered").rglob("*") if p.is_file()}
    result = companyos("check", cwd=repo)
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err
    assert {p: p.read_bytes() for p in (repo / "rendered").rglob("*") if p.is_file()} == before
    lines = [line for line in result.err.splitlines() if needle in line]
    assert lines, result.err
    return lines


def _text_at(repo: Path, location: str) -> str:
    path, line, _ = location.rsplit(":", 2)
    return (repo / path).read_text(encoding="utf-8").splitlines()[int(line) - 1]


def test_an_hpa_without_metrics_server_fails_at_the_services_autoscaling(companyos: Any, repo: Path) -> None:
    (repo / "catalog/addons/metrics-server.yaml").unlink()
    lines = _failing(companyos, repo, "consumes api_service 'metrics.k8s.io'")
    assert "no rendered file provides it" in lines[0] and "metrics-server" in lines[0]
    assert any("HorizontalPodAutoscaler" not in line and "rendered/helm/" in line for line in lines)
    location = lines[0].split(": ", 1)[0]
    assert location.startswith("catalog/services/") and "autoscaling" in _text_at(repo, location)


def test_an_ingress_whose_class_no_add_on_creates_fails_at_the_services_ingress(companyos: Any, repo: Path) -> None:
    path = repo / "catalog/addons/aws-load-balancer-controller.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  replicaCount: 2\n", "  replicaCount: 2\n  createIngressClassResource: false\n", 1), encoding="utf-8")
    lines = _failing(companyos, repo, "consumes ingress_class 'alb'")
    assert all("rendered/helm/" in line for line in lines)
    location = lines[0].split(": ", 1)[0]
    assert location.startswith("catalog/services/") and "ingress" in _text_at(repo, location)
