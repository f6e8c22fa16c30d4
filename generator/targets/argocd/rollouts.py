"""Progressive delivery with Argo Rollouts, as data: which (tenant, service, environment)
gets a canary, and the Rollout, AnalysisTemplate and HorizontalPodAutoscaler for it.

The chart stays unmodified: the Rollout points at the chart's Deployment with
``workloadRef`` and scales it down once the Rollout's own pods are healthy. Because the
Rollout, not the Deployment, then owns the pods, the Helm values leave the Deployment's
``replicas`` unset and the chart's HPA off (``targets/helm.py`` asks ``common.canary_enabled``),
and the HPA here targets the Rollout instead.
"""

from __future__ import annotations

from typing import Any

from generator.catalog.spec import Service
from generator.model import naming
from generator.model.resolve import Deployment

ROLLOUTS_API = "argoproj.io/v1alpha1"


def rollout_documents(d: Deployment, service: Service, labels: dict[str, str]) -> list[dict[str, Any]]:
    """AnalysisTemplate, Rollout and (with autoscaling) the HPA, in apply order."""
    assert service.canary is not None
    canary = service.canary
    settings = d.settings.services[service.name]
    workload = naming.workload_name(service.name)
    template_name = naming.analysis_template_name(service.name)
    analysis = canary.analysis
    query = (
        f'sum(rate(http_requests_total{{namespace="{{{{args.namespace}}}}",service="{{{{args.service}}}}",code!~"5.."}}[{analysis.interval}]))'
        f' / sum(rate(http_requests_total{{namespace="{{{{args.namespace}}}}",service="{{{{args.service}}}}"}}[{analysis.interval}]))'
    )
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
            "args": [{"name": "namespace"}, {"name": "service"}],
            "metrics": [
                {
                    "name": "success-rate",
                    "interval": analysis.interval,
                    "failureLimit": analysis.failure_limit,
                    # No traffic yet (empty or NaN result) is not a failure; a low ratio is.
                    "successCondition": f"len(result) == 0 || isNaN(result[0]) || result[0] >= {analysis.success_rate_min}",
                    "provider": {"prometheus": {"address": analysis.prometheus_address, "query": query}},
                }
            ],
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
                        "args": [{"name": "namespace", "value": d.namespace}, {"name": "service", "value": workload}],
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
    if settings.autoscaling.enabled:
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
                        }
                    ],
                },
            }
        )
    return docs
