"""The AWS side of the elastic capacity levers: each root's ``capacity.tf``.

* shared: Karpenter's controller role (Pod Identity), node role, access entry and spot
  interruption queue from the eks module's karpenter submodule, and the discovery tags its
  EC2NodeClass selects subnets and the node security group by (targets/capacity.py);
* tenant roots: one SQS queue per queue a service owns (``Service.queues``), its policy
  admitting KEDA's IRSA role to read the depth, and the service's role allowed to consume it;
* pool and dedicated roots with ``database.proxy``: an RDS Proxy with end-to-end IAM auth,
  whose endpoint the database secrets then carry;
* tenant roots with an edge: the cache policy of static paths (cached, compressed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from generator.catalog import spec
from generator.model import addons as model_addons
from generator.model import naming
from generator.model.resolve import Deployment, Model
from generator.targets import common

TEMPLATE = "terraform/capacity.tf.j2"
FILENAME = "capacity.tf"
#: Managed AWS policy that lets SSM manage Karpenter's nodes (no SSH keys).
SSM_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
#: CloudFront's AWS-managed CachingDisabled policy (APIs: never cached at the edge).
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
#: A day at the edge for static assets (their names carry a content hash), a year at most.
STATIC_TTL = {"min": 0, "default": 86_400, "max": 31_536_000}


class Root(Protocol):
    """What this module reads of a root (``target.Root``, which calls it)."""

    env: spec.Environment
    kind: str
    settings: spec.Settings
    deployment: Deployment | None
    edge: list[tuple[str, str]]
    prefix: str


@dataclass(frozen=True)
class Capacity:
    """What one root's capacity.tf holds; empty parts render nothing."""

    karpenter: dict[str, Any] | None = None
    queues: list[dict[str, Any]] = field(default_factory=list)
    proxy: dict[str, Any] | None = None
    static_paths: list[str] = field(default_factory=list)
    origin_shield: bool = False

    @property
    def empty(self) -> bool:
        return self.karpenter is None and not self.queues and self.proxy is None and not self.static_paths

    @property
    def modules(self) -> set[str]:
        used = set()
        if self.karpenter is not None:
            used.add("karpenter")
        if self.queues:
            used.add("sqs")
        return used


def capacity(model: Model, root: Root) -> Capacity:
    env = root.env.name
    karpenter = None
    if root.kind == "shared" and common.has_addon(model, env, common.KARPENTER_ADDON):
        cluster = naming.cluster_name(model.platform, env)
        karpenter = {
            "cluster": cluster,
            "queue": f"{cluster}-karpenter",
            "node_role": f"{cluster}-karpenter-node",
            "controller_role": f"{cluster}-karpenter",
            "subnets": root.settings.network.az_count,
            "ssm_policy": SSM_POLICY,
        }
    queues: list[dict[str, Any]] = []
    d = root.deployment
    if d is not None:
        keda = (
            model_addons.role_arn(root.env.accounts.shared_services, model.platform, env, common.KEDA_ADDON)
            if common.has_addon(model, env, common.KEDA_ADDON)
            else None
        )
        for svc in d.services:
            slug = svc.name.replace("-", "_")
            for queue in svc.queues:
                queues.append(
                    {
                        "module": f"queue_{slug}_{queue.replace('-', '_')}",
                        "name": common.queue_name(model, env, d.name, queue),
                        "service": svc.name,
                        "irsa_module": f"irsa_{slug}",
                        "keda_role": keda,
                    }
                )
    proxy = None
    if root.kind in ("pool", "dedicated") and root.settings.database.proxy:
        proxy = {"name": root.prefix[:60], "role": f"{root.prefix}-db-proxy"[:64]}
    static: list[str] = []
    if d is not None and root.edge:
        edged = {name for name, _ in root.edge}
        static = sorted({p for svc in d.services if svc.name in edged for p in svc.ingress.static_paths})
    # Origin Shield pays where many edge locations miss on the same objects: production traffic
    # with something cacheable; a dev or stage distribution's misses are too few to repay it.
    # The last environment of the whole chain, never of the slice this unit renders.
    shield = bool(static) and common.is_last_environment(model, env)
    return Capacity(karpenter, queues, proxy, static, shield)


def context(model: Model, root: Root) -> dict[str, Any]:
    cap = capacity(model, root)
    return {
        "karpenter": cap.karpenter,
        "queues": cap.queues,
        "proxy": cap.proxy,
        "static_paths": cap.static_paths,
        "origin_shield": cap.origin_shield,
        "caching_disabled": CACHING_DISABLED,
        "static_ttl": STATIC_TTL,
    }
