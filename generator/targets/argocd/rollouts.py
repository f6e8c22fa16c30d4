"""Progressive delivery with Argo Rollouts, as data: which (tenant, service, environment)
gets a canary, and the Rollout, AnalysisTemplate and HorizontalPodAutoscaler for it.

The chart stays unmodified: the Rollout points at the chart's Deployment with
``workloadRef`` and scales it down once the Rollout's own pods are healthy. Because the
Rollout, not the Deployment, then owns the pods, the Helm values leave the Deployment's
``replicas`` unset and the chart's HPA off (``targets/helm.py`` asks ``common.canary_enabled``),
and the HPA here targets the Rollout instead.

The analysis measures the service's SLO (``settings.services.<name>.slo``, thresholds from
``model/slo.py``) on the canary's own pods, treats no data as failure, and a failed metric
aborts the Rollout: traffic returns to the stable ReplicaSet without a human.
"""

from __future__ import annotations

from typing import Any

from generator.catalog.spec import Service
from generator.model import naming
from generator.model import slo as slo_model
from generator.model.resolve import Deployment

ROLLOUTS_API = "argoproj.io/v1alpha1"
#: Analysis arguments: the pod-template hash of the canary and of the stable ReplicaSet, which
#: Prometheus sees as the ``rollouts_pod_template_hash`` label (ServiceMonitor ``podTargetLabels``).
CANARY_HASH = "canary-hash"
STABLE_HASH = "stable-hash"
HASH_LABEL = "rollouts_pod_template_hash"


def conditions(limit: str) -> dict[str, str]:
    """Success only on a real number at or under ``limit``: no series (no traffic, no metric,
    a wrong selector) and NaN (0/0) fail, so a canary nobody measured is never promoted."""
    return {
        "successCondition": f"len(result) > 0 && !isNaN(result[0]) && result[0] <= {limit}",
        "failureCondition": f"len(result) == 0 || isNaN(result[0]) || result[0] > {limit}",
    }


def analysis_metrics(d: Deployment, service: Service) -> list[dict[str, Any]]:
    """Per SLI, the canary pods' error ratio against ``canary_max_burn_rate`` x the budget;
    with ``compare_baseline``, also canary minus stable error ratio against one budget."""
    assert service.canary is not None
    analysis = service.canary.analysis
    slo = d.settings.services[service.name].slo
    scope = {"namespace": d.namespace, "service": naming.workload_name(service.name)}
    canary = {**scope, HASH_LABEL: f"{{{{args.{CANARY_HASH}}}}}"}
    stable = {**scope, HASH_LABEL: f"{{{{args.{STABLE_HASH}}}}}"}
    window = analysis.interval
    metrics: list[dict[str, Any]] = []

    def metric(name: str, query: str, limit: str) -> dict[str, Any]:
        return {
            "name": name,
            "interval": analysis.interval,
            "failureLimit": analysis.failure_limit,
            **conditions(limit),
            "provider": {"prometheus": {"address": analysis.prometheus_address, "query": query}},
        }

    for sli in slo_model.slis(slo):
        objective = slo_model.objective(slo, sli)
        limit = slo_model.number(slo_model.threshold(objective, slo.canary_max_burn_rate))
        canary_ratio = slo_model.error_ratio(slo, sli, canary, window)
        metrics.append(metric(f"{sli}-burn-rate", canary_ratio, limit))
        if slo.compare_baseline:
            stable_ratio = slo_model.error_ratio(slo, sli, stable, window)
            budget = slo_model.number(slo_model.budget(objective))
            metrics.append(metric(f"{sli}-vs-baseline", f"({canary_ratio}) - ({stable_ratio})", budget))
    return metrics


def rollout_documents(d: Deployment, service: Service, labels: dict[str, str], *, keda: bool = False) -> list[dict[str, Any]]:
    """AnalysisTemplate, Rollout and (with autoscaling) the HPA, in apply order; no HPA when
    KEDA scales the Rollout (``keda``: its ScaledObject makes the HPA, targets/capacity.py)."""
    assert service.canary is not None
    canary = service.canary
    settings = d.settings.services[service.name]
    workload = naming.workload_name(service.name)
    template_name = naming.analysis_template_name(service.name)
    template = {
        "apiVersion": ROLLOUTS_API,
        "kind": "AnalysisTemplate",
        "metadata": {
            "name": template_name,
            "namespace": d.namespace,
            "labels": labels,
            "annotations": {"argocd.argoproj.io/sync-wave": "0"},
        },
        "spec": {
            "args": [{"name": CANARY_HASH}, {"name": STABLE_HASH}],
            "metrics": analysis_metrics(d, service),
        },
    }
    steps: list[dict[str, Any]] = []
    for step in canary.steps:
        steps.append({"setWeight": step.weight})
        if step.pause is not None:
            steps.append({"pause": {"duration": step.pause}})
    rollout_spec: dict[str, Any] = {}
    if not settings.autoscaling.enabled:
        rollout_spec["replicas"] = settings.replicas
    rollout_spec.update(
        {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {"app.kubernetes.io/name": workload}},
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload, "scaleDown": "progressively"},
            "strategy": {
                "canary": {
                    # Background analysis from the first step: a failing metric aborts the
                    # rollout, which sends all traffic back to the stable ReplicaSet.
                    "analysis": {
                        "templates": [{"templateName": template_name}],
                        "startingStep": 1,
                        "args": [
                            {"name": CANARY_HASH, "valueFrom": {"podTemplateHashValue": "Latest"}},
                            {"name": STABLE_HASH, "valueFrom": {"podTemplateHashValue": "Stable"}},
                        ],
                    },
                    "steps": steps,
                }
            },
        }
    )
    rollout = {
        "apiVersion": ROLLOUTS_API,
        "kind": "Rollout",
        "metadata": {"name": workload, "namespace": d.namespace, "labels": labels, "annotations": {"argocd.argoproj.io/sync-wave": "1"}},
        "spec": rollout_spec,
    }
    docs = [template, rollout]
    if settings.autoscaling.enabled and not keda:
        docs.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {
                    "name": workload,
                    "namespace": d.namespace,
                    "labels": labels,
                    "annotations": {"argocd.argoproj.io/sync-wave": "1"},
                },
                "spec": {
                    "scaleTargetRef": {"apiVersion": ROLLOUTS_API, "kind": "Rollout", "name": workload},
                    "minReplicas": settings.autoscaling.min_replicas,
                    "maxReplicas": settings.autoscaling.max_replicas,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {"type": "Utilization", "averageUtilization": settings.autoscaling.target_cpu_percent},
                            },
                        },
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "memory",
                                "target": {"type": "Utilization", "averageUtilization": settings.autoscaling.target_memory_percent},
                            },
                        },
                    ],
                },
            }
        )
    return docs
