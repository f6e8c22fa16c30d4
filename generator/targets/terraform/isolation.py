"""Tenant network and edge isolation in the Terraform roots (docs/isolation.md).

Every tenant's pods run on the shared cluster, so the shared root owns one security group for
pods per tenant namespace (a ``SecurityGroupPolicy`` in the namespace attaches it); the data
stores of a dedicated tenant admit only its own pod group, a pool's only its tenants' groups,
by cross-account reference over the VPC peering. Edge roots put the ALB behind a security group
open to CloudFront's origin-facing prefix list only and a regional WAF that demands the secret
origin header CloudFront adds. This module decides the names and lists; the macros in
``templates/terraform/_isolation.tf.j2`` write the HCL.
"""

from __future__ import annotations

from typing import Any

from generator.model import name_registry, naming, networks
from generator.model.resolve import Deployment, Model
from generator.targets.terraform.modules import PROVIDERS

#: The macros this module feeds (a source of every main.tf and outputs.tf that uses them).
MACROS = "terraform/_isolation.tf.j2"
#: The header CloudFront adds to origin requests and the ALB's WAF requires (value: random_password).
ORIGIN_HEADER = "x-origin-verify"
#: AWS-managed prefix list of CloudFront's origin-facing addresses.
CLOUDFRONT_PREFIX_LIST = "com.amazonaws.global.cloudfront.origin-facing"
POSTGRES_PORT = 5432
REDIS_PORT = 6379


def pod_groups(model: Model, env_name: str, nets: networks.Networks) -> list[dict[str, str]]:
    """Per tenant in ``env_name``: its pod security group's name, namespace and data VPC CIDR
    (where its pods may open database and cache connections: its own VPC or its tier's pool)."""
    out = []
    for d in model.in_environment(env_name):
        out.append(
            {
                "tenant": d.name,
                "name": name_registry.isolation_names(model.platform, env_name, d.name)["pods"],
                "namespace": d.namespace,
                "data_cidr": str(networks.vpc_cidr(nets, env_name, data_vpc_key(d))),
            }
        )
    return out


def data_vpc_key(d: Deployment) -> str:
    """The address-plan key of the VPC holding ``d``'s database and cache."""
    return naming.tenant_root(d.name) if d.dedicated else naming.pool_root(d.tier.name)


def pool_admin(model: Model, env_name: str, nets: networks.Networks) -> dict[str, Any]:
    """The security group of the pools' bootstrap Jobs (namespace ``<org>-pools``, targets/
    pool_bootstrap.py) in the shared VPC: PostgreSQL to each pool's data VPC and nothing else;
    each pool's database admits it. Empty when ``env_name`` has no pooled tenant."""
    tiers = sorted({d.tier.name for d in model.in_environment(env_name) if not d.dedicated})
    if not tiers:
        return {}
    return {
        "name": naming.pool_admin_group(model.platform, env_name),
        "namespace": naming.pools_namespace(model.platform),
        "pools": {tier: str(networks.vpc_cidr(nets, env_name, naming.pool_root(tier))) for tier in tiers},
    }


def pool_clients(model: Model, env_name: str, tier: str) -> list[str]:
    """The pooled tenants of ``tier`` in ``env_name``: the only pod groups the pool admits."""
    return [d.name for d in model.in_environment(env_name) if not d.dedicated and d.tier.name == tier]


def tenant_names(model: Model, env_name: str, tenant: str) -> dict[str, str]:
    """Names of a tenant root's isolation objects (registered in ``model/name_registry.py``)."""
    names = name_registry.isolation_names(model.platform, env_name, tenant)
    return {"pods_sg": names["pods"], "alb_sg": names["alb"], "origin_waf": names["origin_waf"]}


def providers(required: dict[str, tuple[str, str]], edge: bool) -> dict[str, tuple[str, str]]:
    """``required`` plus ``random`` where an edge needs the CloudFront origin secret."""
    if not edge:
        return required
    return dict(sorted({**required, "random": PROVIDERS["random"]}.items()))


def context() -> dict[str, Any]:
    """Constants the macros need."""
    return {
        "origin_header": ORIGIN_HEADER,
        "cloudfront_prefix_list": CLOUDFRONT_PREFIX_LIST,
        "postgres_port": POSTGRES_PORT,
        "redis_port": REDIS_PORT,
    }
