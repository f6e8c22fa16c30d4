"""CloudWatch alarms of the AWS-managed pieces, for the ``alarms.tf`` of pool and tenant roots.

What a root owns is what it watches: RDS (CPU, free storage, connections, each read replica's lag) and
each ElastiCache node (engine CPU, evictions) in pool and dedicated roots; the SQS queue's
oldest message and its dead-letter queue in tenant roots; CloudFront's 5xx rate where a
tenant publishes a service (in us-east-1, where CloudFront's metrics are); each NAT gateway
of a root's VPC (port allocation errors, dropped packets), so the shared root has one too.
Thresholds come from ``settings.alarms`` (layered like every setting). Every alarm notifies the root's own
alarm topic (a CMK CloudWatch may use, an e-mail subscription to the root's owner: the
tenant's, or the platform's for a pool); CloudFront's alarms need a twin topic in us-east-1.
A tenant root with a public service also watches its ALB (5xx rate, p99 latency), found by
the load balancer controller's tags (docs/observability.md says why and how).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from generator.catalog import spec
from generator.errors import Location
from generator.formats.templating import Templates, hcl_value
from generator.model import naming
from generator.model.resolve import Deployment, Model
from generator.targets import common
from generator.targets.base import RenderedFile
from generator.targets.contracts import Contract
from generator.targets.contracts import at as contract_at
from generator.targets.terraform.hcl import format_hcl


class Root(Protocol):
    """What this module reads of a Terraform root (``target.Root``; a protocol, not an import:
    the target imports this module)."""

    kind: str
    name: str
    prefix: str
    settings: spec.Settings
    env: spec.Environment
    deployment: Deployment | None
    replicas: list[str]
    names: dict[str, str]
    edge: list[tuple[str, str]]
    cluster: str
    sources: list[str]

    @property
    def tenant(self) -> str | None: ...

    @property
    def dir(self) -> str: ...


TEMPLATE = "terraform/alarms.tf.j2"
FILENAME = "alarms.tf"
#: Seconds per evaluation period (the basic-monitoring resolution of RDS and ElastiCache).
PERIOD = 300
#: Root kinds with something to watch (the shared root's EKS is watched by Prometheus; its NAT gateways here).
KINDS = ("shared", "pool", "dedicated", "pooled")
#: Root kinds whose main.tf calls the vpc module as ``module.vpc`` (the DR VPC is in another region).
VPC_KINDS = ("shared", "pool", "dedicated")
TOPIC = "alarm_topic"
EDGE_TOPIC = "alarm_topic_edge"
ORIGIN_TOPIC = "alarm_topic_origin"
#: The provider alias of the cluster's account (where the controller creates the ALB).
ORIGIN_PROVIDER = "shared"
#: Tags the AWS Load Balancer Controller puts on the ALB of an explicit Ingress group.
CONTROLLER_CLUSTER_TAG = "elbv2.k8s.aws/cluster"
CONTROLLER_STACK_TAG = "ingress.k8s.aws/stack"
CONTROLLER_RESOURCE_TAG = "ingress.k8s.aws/resource"
_PLAIN_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Alarm:
    """One ``aws_cloudwatch_metric_alarm``; ``dimensions`` values are HCL expressions."""

    address: str
    name: str
    namespace: str
    metric: str
    statistic: str
    comparison: str
    threshold: float
    dimensions: dict[str, str]
    description: str
    edge: bool = False
    #: ``breaching`` where silence means the thing is gone, ``notBreaching`` where it means idle.
    missing: str = "notBreaching"


def applies(root: Root) -> bool:
    return root.kind in KINDS


def owner(root: Root, platform_owner: str) -> str:
    """Who the alarm topic mails: the tenant for its root, the platform for a pool."""
    return root.deployment.tenant.owner if root.deployment is not None else platform_owner


def topic_name(root: Root, edge: bool = False, origin: bool = False) -> str:
    return f"{root.prefix}-alarms" + ("-edge" if edge else "") + ("-origin" if origin else "")


def cache_nodes(cache_id: str, shards: int, replicas_per_shard: int) -> list[str]:
    """Member cluster ids of a cluster-mode replication group: ``<id>-<shard:04>-<node:03>``."""
    return [f"{cache_id}-{shard:04d}-{node:03d}" for shard in range(1, shards + 1) for node in range(1, replicas_per_shard + 2)]


def nat_gateways(settings: spec.Settings) -> int:
    """NAT gateways the vpc module creates: one per AZ, or a single one."""
    return settings.network.az_count if settings.network.nat_gateways == "per_az" else 1


def _lit(text: str) -> str:
    return hcl_value(text)


def alarms(root: Root) -> list[Alarm]:
    a = root.settings.alarms
    out: list[Alarm] = []
    where = f"{root.env.name}/{root.name}"
    if root.kind in ("pool", "dedicated"):
        db = {"DBInstanceIdentifier": "module.db.db_instance_identifier"}
        out.append(
            Alarm(
                "db_cpu",
                f"{root.prefix}-db-cpu",
                "AWS/RDS",
                "CPUUtilization",
                "Average",
                "GreaterThanThreshold",
                a.database_cpu_percent,
                db,
                f"RDS CPU of {where} above {a.database_cpu_percent}%",
            )
        )
        out.append(
            Alarm(
                "db_free_storage",
                f"{root.prefix}-db-free-storage",
                "AWS/RDS",
                "FreeStorageSpace",
                "Minimum",
                "LessThanThreshold",
                a.database_free_storage_gb * 1024**3,
                db,
                f"RDS free storage of {where} below {a.database_free_storage_gb} GiB",
                missing="breaching",
            )
        )
        out.append(
            Alarm(
                "db_connections",
                f"{root.prefix}-db-connections",
                "AWS/RDS",
                "DatabaseConnections",
                "Maximum",
                "GreaterThanThreshold",
                a.database_connections,
                db,
                f"RDS connections of {where} above {a.database_connections}",
            )
        )
        for i, replica in enumerate(root.replicas, start=1):
            out.append(
                Alarm(
                    f"db_replica_lag_{i}",
                    f"{replica}-lag",
                    "AWS/RDS",
                    "ReplicaLag",
                    "Maximum",
                    "GreaterThanThreshold",
                    a.replica_lag_seconds,
                    {"DBInstanceIdentifier": _lit(replica)},
                    f"Read replica {replica} of {where} lags more than {a.replica_lag_seconds}s",
                    missing="breaching",
                )
            )
        c = root.settings.cache
        for node in cache_nodes(root.names["cache_id"], c.shards, c.replicas_per_shard):
            slug = node.rsplit("-", 2)
            suffix = f"{int(slug[1])}_{int(slug[2])}"
            dims = {"CacheClusterId": _lit(node)}
            out.append(
                Alarm(
                    f"cache_cpu_{suffix}",
                    f"{node}-cpu",
                    "AWS/ElastiCache",
                    "EngineCPUUtilization",
                    "Average",
                    "GreaterThanThreshold",
                    a.cache_cpu_percent,
                    dims,
                    f"Redis node {node} of {where}: engine CPU above {a.cache_cpu_percent}%",
                )
            )
            out.append(
                Alarm(
                    f"cache_evictions_{suffix}",
                    f"{node}-evictions",
                    "AWS/ElastiCache",
                    "Evictions",
                    "Sum",
                    "GreaterThanThreshold",
                    a.cache_evictions,
                    dims,
                    f"Redis node {node} of {where} evicts more than {a.cache_evictions} keys per 5 minutes",
                )
            )
    if root.kind in ("dedicated", "pooled"):
        out.append(
            Alarm(
                "queue_age",
                f"{root.prefix}-queue-age",
                "AWS/SQS",
                "ApproximateAgeOfOldestMessage",
                "Maximum",
                "GreaterThanThreshold",
                a.queue_oldest_message_seconds,
                {"QueueName": "module.queue.queue_name"},
                f"Oldest message of {where}'s queue older than {a.queue_oldest_message_seconds}s",
            )
        )
        out.append(
            Alarm(
                "queue_dlq",
                f"{root.prefix}-queue-dlq",
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "Maximum",
                "GreaterThanOrEqualToThreshold",
                1,
                {"QueueName": "module.queue.dead_letter_queue_name"},
                f"Messages in {where}'s dead-letter queue",
            )
        )
    if root.kind in VPC_KINDS:
        for i in range(nat_gateways(root.settings)):
            nat = {"NatGatewayId": f"module.vpc.natgw_ids[{i}]"}
            out.append(
                Alarm(
                    f"nat_port_allocation_{i}",
                    f"{root.prefix}-nat-{i}-port-allocation",
                    "AWS/NATGateway",
                    "ErrorPortAllocation",
                    "Sum",
                    "GreaterThanThreshold",
                    a.nat_port_allocation_errors,
                    nat,
                    f"NAT gateway {i} of {where} could not allocate source ports more than {a.nat_port_allocation_errors} times per 5 minutes",
                )
            )
            out.append(
                Alarm(
                    f"nat_packets_dropped_{i}",
                    f"{root.prefix}-nat-{i}-packets-dropped",
                    "AWS/NATGateway",
                    "PacketsDropCount",
                    "Sum",
                    "GreaterThanThreshold",
                    a.nat_packets_dropped,
                    nat,
                    f"NAT gateway {i} of {where} dropped more than {a.nat_packets_dropped} packets per 5 minutes",
                )
            )
    if root.edge:
        hosts = ", ".join(host for _, host in root.edge)
        out.append(
            Alarm(
                "edge_5xx",
                f"{root.prefix}-edge-5xx",
                "AWS/CloudFront",
                "5xxErrorRate",
                "Average",
                "GreaterThanThreshold",
                a.edge_5xx_percent,
                {"DistributionId": "module.cdn.cloudfront_distribution_id", "Region": _lit("Global")},
                f"CloudFront 5xx rate of {hosts} above {a.edge_5xx_percent:g}%",
                edge=True,
            )
        )
    return out


@dataclass(frozen=True)
class OriginAlarms:
    """The 5xx rate and p99 latency of a tenant's ALB, found by the controller's tags."""

    #: The Ingress group (``alb.ingress.kubernetes.io/group.name``, ``targets/helm.py``).
    group: str
    cluster: str
    five_xx_percent: float
    latency_p99_seconds: float
    #: Alarm names are ``<name>-5xx-<ALB name>``: one pair per ALB the tags find.
    name: str
    hosts: str

    @property
    def tags(self) -> dict[str, str]:
        return {CONTROLLER_CLUSTER_TAG: self.cluster, CONTROLLER_STACK_TAG: self.group, CONTROLLER_RESOURCE_TAG: "LoadBalancer"}

    @property
    def contract_name(self) -> str:
        """``<cluster>/<group>``: the Ingress group the tenant's Applications deploy to that cluster."""
        return common.ingress_group_key(self.cluster, self.group)


def origin_alarms(root: Root) -> OriginAlarms | None:
    """The ALB alarms of a tenant root with a public service (None otherwise)."""
    if not root.edge or root.deployment is None or root.deployment.account_pending:
        return None  # no public service, or no Applications yet (a vended account not recorded)
    # Both end up inside HCL strings next to an interpolation: plain names only (catalog names are).
    assert all(_PLAIN_NAME.match(x) for x in (root.prefix, root.cluster, root.names["ingress_group"])), root.dir
    a = root.settings.alarms
    return OriginAlarms(
        group=root.names["ingress_group"],
        cluster=root.cluster,
        five_xx_percent=a.origin_5xx_percent,
        latency_p99_seconds=a.origin_latency_p99_seconds,
        name=f"{root.prefix}-origin",
        hosts=", ".join(host for _, host in root.edge),
    )


def context(root: Root, platform_owner: str) -> dict[str, object]:
    found = alarms(root)
    origin = origin_alarms(root)
    return {
        "origin": origin,
        "origin_topic": topic_name(root, origin=True) if origin else None,
        "origin_topic_module": ORIGIN_TOPIC,
        "origin_provider": ORIGIN_PROVIDER,
        "alarms": found,
        "period": PERIOD,
        "owner": owner(root, platform_owner),
        "topic": topic_name(root),
        "edge_topic": topic_name(root, edge=True) if any(x.edge for x in found) else None,
        "topic_module": TOPIC,
        "edge_topic_module": EDGE_TOPIC,
        "tenant_label": naming.namespace(root.tenant) if root.tenant else root.name,
    }


_BLOCK = re.compile(r'^(module|resource) "([A-Za-z0-9_-]+)"(?: "([A-Za-z0-9_-]+)")? \{\n(.*?)^\}', re.MULTILINE | re.DOTALL)
_NAME = re.compile(r'^\s*name\s*=\s*"([^"]+)"', re.MULTILINE)
_SNS_SOURCE = re.compile(r'^\s*source\s*=\s*"terraform-aws-modules/sns/aws"', re.MULTILINE)
_ACTIONS = re.compile(r"^\s*alarm_actions\s*=\s*\[module\.([A-Za-z0-9_]+)\.topic_arn\]", re.MULTILINE)


def contracts(text: str, root_dir: str, env: str, where: Location) -> tuple[list[Contract], list[Contract]]:
    """The topics the rendered file declares (``sns`` modules by name) and the topic each
    alarm's action names: an alarm notifying a topic nobody creates fails the render."""
    provides: list[Contract] = []
    consumes: list[Contract] = []
    for kind, first, _, body in _BLOCK.findall(text):
        if kind == "module" and _SNS_SOURCE.search(body):
            name = _NAME.search(body)
            provides.append(Contract("sns_topic", f"{root_dir}:{first}", env, detail=name.group(1) if name else "", at=where))
        elif kind == "resource" and first == "aws_cloudwatch_metric_alarm":
            consumes += [Contract("sns_topic", f"{root_dir}:{module}", env, at=where) for module in _ACTIONS.findall(body)]
    return provides, consumes


def files(model: Model, templates: Templates, root: Root, base: dict[str, Any]) -> Iterator[RenderedFile]:
    """``alarms.tf`` of a pool or tenant root (the shared root has none)."""
    if not applies(root):
        return
    ctx = context(root, model.platform.owner)
    text = format_hcl(templates.render(TEMPLATE, **ctx, **base))
    sources = (*root.sources, templates.path(TEMPLATE), templates.path("terraform/_blocks.tf.j2"))
    if root.tenant is not None:
        where = contract_at(model, "tenant", root.tenant, "owner")
    else:
        where = contract_at(model, "environment", root.env.name)
    provides, consumes = contracts(text, root.dir, root.env.name, where)
    origin = ctx["origin"]
    if isinstance(origin, OriginAlarms):
        # The ALB exists only if the tenant's Applications deploy an Ingress of this group to that cluster.
        first_public = root.edge[0][0]
        at = contract_at(model, "service", first_public, "ingress")
        consumes.append(Contract("ingress_group", origin.contract_name, root.env.name, at=at))
    yield RenderedFile(
        path=f"{root.dir}/{FILENAME}",
        text=text,
        sources=sources,
        tenant=root.tenant,
        environment=root.env.name,
        root=root.dir,
        provides=tuple(provides),
        consumes=tuple(consumes),
    )
