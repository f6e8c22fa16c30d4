"""Elastic capacity in the cluster: Karpenter NodePools per workload class and KEDA scaling.

Per environment with the Karpenter add-on, ``rendered/argocd/<env>/capacity.yaml`` (an
AppProject fenced to NodePools and EC2NodeClasses, and the Application syncing
``capacity/``) and ``capacity/nodepools.yaml`` (one EC2NodeClass, NodePools system, tenant and
spot). Per (tenant, service) that KEDA scales (``common.keda_scaled``), a ScaledObject on the
depth of the service's own queue plus CPU and memory, and the TriggerAuthentication through
KEDA's IRSA role: ``scaling/<tenant>/<service>.yaml``, synced by the service's Application.
The AWS side (Karpenter's roles and interruption queue, the queues) is terraform/capacity.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.catalog import spec
from generator.formats.templating import Templates
from generator.model import naming
from generator.model.resolve import Deployment, Model
from generator.targets import common
from generator.targets.base import RenderedFile
from generator.targets.contracts import Contract, deployed_kinds, whitelist
from generator.targets.contracts import at as contract_at

NAME = "capacity"
#: Each environment's files depend on that environment's slice of the model only (see parallel.py).
PER_ENVIRONMENT = True
RELATIVE_COST = 1
API = "argoproj.io/v1alpha1"
T_CAPACITY = "capacity/capacity.yaml.j2"
T_NODEPOOLS = "capacity/nodepools.yaml.j2"
T_SCALING = "capacity/scaling.yaml.j2"
KEDA_API = "keda.sh/v1alpha1"
#: Karpenter consolidates a node this long after it became empty or underutilized (the cost
#: guard's consolidation assumption, catalog/pricing.yaml, rests on it).
CONSOLIDATE_AFTER = "5m"
#: Nodes are replaced after 30 days: patched AMIs without a drift event.
EXPIRE_AFTER = "720h"
#: The system pool (add-ons) is small and fixed; tenant pools take the environment's node_limits.
SYSTEM_LIMITS = {"cpu": "16", "memory": "64Gi"}
#: KEDA polls the queue every 30 s and waits 5 minutes of quiet before scaling to zero.
POLLING_INTERVAL = 30
COOLDOWN_PERIOD = 300


def capacity_path(env: str) -> str:
    return f"rendered/argocd/{env}/capacity.yaml"


def nodepools_path(env: str) -> str:
    return f"rendered/argocd/{env}/capacity/nodepools.yaml"


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    for env in model.environments:
        deployments = model.in_environment(env.name)
        in_env = contract_at(model, "environment", env.name)
        sources = (model.source("platform", "platform"), model.source("environment", env.name))
        if common.has_addon(model, env.name, common.KARPENTER_ADDON) and deployments:
            addon = (model.source("addon", common.KARPENTER_ADDON),)
            argo = application_documents(model, env)
            yield RenderedFile(
                path=capacity_path(env.name),
                text=templates.render(T_CAPACITY, env=env, documents=argo),
                sources=(*sources, *addon, templates.path(T_CAPACITY)),
                environment=env.name,
                provides=tuple(whitelist(argo[0]["metadata"]["name"], env.name, argo[0]["spec"]["clusterResourceWhitelist"], at=in_env)),
                consumes=tuple(deployed_kinds(argo, naming.gitops_project(model.platform, env.name), env.name, at=in_env)),
            )
            pools = nodepool_documents(model, env)
            yield RenderedFile(
                path=nodepools_path(env.name),
                text=templates.render(T_NODEPOOLS, env=env, documents=pools, consolidate_after=CONSOLIDATE_AFTER),
                sources=(*sources, *addon, *(model.source("tier", t) for t in sorted(model.tiers)), templates.path(T_NODEPOOLS)),
                environment=env.name,
                consumes=tuple(deployed_kinds(pools, naming.capacity_project(model.platform, env.name), env.name, at=in_env)),
            )
        for d in model.rendered_in(env.name):  # an incremental render (output/units.py) names a few
            for service in d.services:
                if not common.keda_scaled(model, d, service) or d.account_pending:  # held: no queue URL yet
                    continue
                docs = scaling_documents(model, d, service)
                where = contract_at(model, "service", service.name, "queues")
                yield RenderedFile(
                    path=common.scaling_path(env.name, d.name, service.name),
                    text=templates.render(T_SCALING, d=d, service=service, documents=docs),
                    sources=(*d.sources, model.source("service", service.name), templates.path(T_SCALING)),
                    tenant=d.name,
                    environment=env.name,
                    consumes=(
                        Contract("namespace", d.namespace, d.env, at=where),
                        *deployed_kinds(docs, naming.argocd_project(d.name, d.env), d.env, at=where),
                    ),
                )


# --- Karpenter ------------------------------------------------------------------------------


def application_documents(model: Model, env: spec.Environment) -> list[dict[str, Any]]:
    """An AppProject that may manage only Karpenter's cluster-scoped pool objects, and the
    Application syncing ``capacity/`` with it (prune on: a removed pool is drained)."""
    repo = model.platform.repository
    project = naming.capacity_project(model.platform, env.name)
    labels = naming.environment_labels(env.name)
    argo_ns = model.platform.argocd_namespace
    return [
        {
            "apiVersion": API,
            "kind": "AppProject",
            # After the add-ons (Karpenter's CRDs, at -3 or earlier), before its Application.
            "metadata": {"name": project, "namespace": argo_ns, "labels": labels, "annotations": {"argocd.argoproj.io/sync-wave": "-2"}},
            "spec": {
                "description": f"Karpenter NodePools and EC2NodeClass of {env.name}",
                "sourceRepos": [repo.url],
                "destinations": [{"name": "in-cluster", "namespace": "*"}],
                "clusterResourceWhitelist": [
                    {"group": "karpenter.sh", "kind": "NodePool"},
                    {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass"},
                ],
                "namespaceResourceWhitelist": [],
            },
        },
        {
            "apiVersion": API,
            "kind": "Application",
            "metadata": {
                "name": naming.capacity_application(env.name),
                "namespace": argo_ns,
                "labels": labels,
                # After its AppProject; with the tenants' AppProjects, before their Applications at 0.
                "annotations": {"argocd.argoproj.io/sync-wave": "-1"},
            },
            "spec": {
                "project": project,
                "destination": {"name": "in-cluster"},
                "source": {"repoURL": repo.url, "targetRevision": repo.revision, "path": f"rendered/argocd/{env.name}/capacity"},
                "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
            },
        },
    ]


def nodepool_documents(model: Model, env: spec.Environment) -> list[dict[str, Any]]:
    cluster = naming.cluster_name(model.platform, env.name)
    labels = naming.environment_labels(env.name)
    node_class = {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": env.name, "labels": labels},
        "spec": {
            "role": karpenter_node_role(model, env.name),
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            # Tagged by the shared root's capacity.tf: the cluster's private subnets and node group.
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": cluster}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": cluster}}],
            "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1},
            "blockDeviceMappings": [
                {
                    "deviceName": "/dev/xvda",
                    "ebs": {"volumeSize": "50Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True},
                }
            ],
            "tags": {
                "environment": env.name,
                "managed-by": "karpenter",
                "owner": model.platform.owner,
                "cost-center": model.platform.cost_center,
            },
        },
    }
    # A catalog budget, not the sum of the tenants' quotas: adding a tenant changes no NodePool
    # (parallel onboarding PRs merge); CO034 checks that the quotas fit in it.
    limits = {"cpu": str(env.node_limits.cpu), "memory": f"{env.node_limits.memory_gib}Gi"}
    pools = [_pool(env.name, "system", "on-demand", SYSTEM_LIMITS, tainted=False, weight=10)]
    pools.append(_pool(env.name, "tenant", "on-demand", limits, tainted=True, weight=None))
    if any(tier.spot_allowed for tier in model.tiers.values()):  # tier data, not which tenants use spot today
        pools.append(_pool(env.name, "spot", "spot", limits, tainted=True, weight=None))
    return [node_class, *pools]


def _pool(env: str, cls: str, capacity_type: str, limits: dict[str, str], *, tainted: bool, weight: int | None) -> dict[str, Any]:
    template: dict[str, Any] = {
        "metadata": {"labels": {common.WORKLOAD_CLASS: cls}},
        "spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": env},
            "requirements": [
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [capacity_type]},
                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]},
                {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]},
                {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["5"]},
            ],
            "expireAfter": EXPIRE_AFTER,
        },
    }
    if tainted:
        template["spec"]["taints"] = [{"key": common.WORKLOAD_CLASS, "value": cls, "effect": "NoSchedule"}]
    spec_: dict[str, Any] = {
        "template": template,
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": CONSOLIDATE_AFTER,
            # At most a tenth of the pool's nodes is disrupted at once.
            "budgets": [{"nodes": "10%"}],
        },
        "limits": limits,
    }
    if weight is not None:
        spec_["weight"] = weight
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": cls, "labels": naming.environment_labels(env)},
        "spec": spec_,
    }


def karpenter_node_role(model: Model, env: str) -> str:
    """The node IAM role the karpenter submodule creates (terraform/capacity.py names it)."""
    return f"{naming.cluster_name(model.platform, env)}-karpenter-node"


def karpenter_queue(model: Model, env: str) -> str:
    """The interruption queue; catalog/addons/karpenter.yaml names it ``{cluster}-karpenter``."""
    return f"{naming.cluster_name(model.platform, env)}-karpenter"


# --- KEDA -----------------------------------------------------------------------------------


def scaling_documents(model: Model, d: Deployment, service: spec.Service) -> list[dict[str, Any]]:
    """TriggerAuthentication (KEDA's own IRSA role, which each queue's policy admits) and the
    ScaledObject: queue depth per replica, CPU and memory; zero replicas when allowed."""
    settings = d.settings.services[service.name]
    auto = settings.autoscaling
    workload = naming.workload_name(service.name)
    labels = {"app.kubernetes.io/part-of": service.name, **naming.tenant_labels(d)}
    auth = f"{workload}-aws"
    wave = {"argocd.argoproj.io/sync-wave": "1"}
    rollout = common.canary_enabled(d, service)
    target = (
        {"apiVersion": API, "kind": "Rollout", "name": workload}
        if rollout
        else {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload}
    )
    triggers: list[dict[str, Any]] = []
    if auto.queue is not None:
        name = common.queue_name(model, d.env, d.name, auto.queue)
        triggers.append(
            {
                "type": "aws-sqs-queue",
                "name": f"queue-{auto.queue}",
                "authenticationRef": {"name": auth},
                "metadata": {
                    "queueURL": common.queue_url(d.environment.aws.region, d.account_id, name),
                    "queueLength": str(auto.messages_per_replica),
                    "activationQueueLength": "0",
                    "awsRegion": d.environment.aws.region,
                },
            }
        )
    triggers += [
        {"type": "cpu", "metricType": "Utilization", "metadata": {"value": str(auto.target_cpu_percent)}},
        {"type": "memory", "metricType": "Utilization", "metadata": {"value": str(auto.target_memory_percent)}},
    ]
    return [
        {
            "apiVersion": KEDA_API,
            "kind": "TriggerAuthentication",
            "metadata": {"name": auth, "namespace": d.namespace, "labels": labels, "annotations": {"argocd.argoproj.io/sync-wave": "0"}},
            "spec": {"podIdentity": {"provider": "aws", "identityOwner": "keda"}},
        },
        {
            "apiVersion": KEDA_API,
            "kind": "ScaledObject",
            "metadata": {"name": workload, "namespace": d.namespace, "labels": labels, "annotations": wave},
            "spec": {
                "scaleTargetRef": target,
                "minReplicaCount": 0 if auto.scale_to_zero else auto.min_replicas,
                "maxReplicaCount": auto.max_replicas,
                "pollingInterval": POLLING_INTERVAL,
                "cooldownPeriod": COOLDOWN_PERIOD,
                "triggers": triggers,
            },
        },
    ]
