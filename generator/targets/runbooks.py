"""Runbooks: ``rendered/runbooks/<env>/{failover,failback,restore,key-rotation,secret-rotation}.md``.
Per-tenant values are in ``rendered/runbooks/<env>/tenants/<tenant>.md``.

Filled with the environment's real account ids, ARNs, regions, hosts and RPO/RTO, so an
on-call engineer copies commands instead of looking values up, and a catalog change
re-renders them. Failover and failback exist only where ``disaster_recovery`` is declared.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from generator.catalog import spec
from generator.formats.templating import Templates
from generator.model import naming
from generator.model.resolve import Model
from generator.targets import common
from generator.targets.base import RenderedFile
from generator.targets.contracts import Contract
from generator.targets.contracts import at as contract_at
from generator.targets.terraform import disaster_recovery as dr

NAME = "runbooks"
TEMPLATE_DIR = "runbooks"
ALWAYS = ("restore", "key-rotation", "secret-rotation")
STANDBY = ("failover", "failback")
#: One page per tenant and environment (tenant_pages).
TENANT_TEMPLATE = f"{TEMPLATE_DIR}/tenant.md.j2"


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    for env in model.environments:
        ctx = context(model, env)
        names = (*STANDBY, *ALWAYS) if dr.enabled(env) else ALWAYS
        for name in names:
            template = f"{TEMPLATE_DIR}/{name}.md.j2"
            yield RenderedFile(
                path=f"rendered/runbooks/{env.name}/{name}.md",
                text=templates.render(template, **ctx),
                sources=(
                    model.source("platform", "platform"),
                    model.source("environment", env.name),
                    *ctx["sources"],
                    templates.path(template),
                ),
                comment=None,
                environment=env.name,
            )
        yield from tenant_pages(model, templates, env, ctx)
        if dr.enabled(env):
            the_plan = plan(model, env, ctx)
            yield RenderedFile(
                path=f"rendered/runbooks/{env.name}/failover-plan.json",
                text=json.dumps(the_plan, indent=2, sort_keys=True) + "\n",
                sources=(model.source("platform", "platform"), model.source("environment", env.name), *ctx["sources"]),
                comment=None,
                environment=env.name,
                consumes=plan_roles(model, env, the_plan),
            )


def tenant_pages(model: Model, templates: Templates, env: spec.Environment, ctx: dict[str, Any]) -> Iterator[RenderedFile]:
    """``rendered/runbooks/<env>/tenants/<tenant>.md``: the per-tenant rows the environment's
    runbooks used to list, so onboarding adds a file and edits none (issue 19)."""
    hosts: dict[str, list[dict[str, str]]] = {}
    for h in ctx["hosts"]:
        hosts.setdefault(h["tenant"], []).append(h)
    for t in ctx["tenants"]:
        if not model.renders(t["name"]):  # an incremental render (output/units.py) skips the others
            continue
        yield RenderedFile(
            path=tenant_page_path(env.name, t["name"]),
            text=templates.render(TENANT_TEMPLATE, **{**ctx, "hosts": hosts.get(t["name"], [])}, t=t),
            sources=(
                model.source("platform", "platform"),
                model.source("environment", env.name),
                model.source("tenant", t["name"]),
                templates.path(TENANT_TEMPLATE),
            ),
            comment=None,
            tenant=t["name"],
            environment=env.name,
        )
        if dr.enabled(env):
            entry = naming.ci_role_arn(env.accounts.shared_services, model.platform, "failover")
            mine = tenant_plan(model, env, t, hosts.get(t["name"], []))
            roles = sorted({s["role"] for s in mine["secrets"]} | {h["role"] for h in mine["hosts"]})
            yield RenderedFile(
                path=tenant_plan_path(env.name, t["name"]),
                text=json.dumps(mine, indent=2, sort_keys=True) + "\n",
                sources=(model.source("platform", "platform"), model.source("environment", env.name), model.source("tenant", t["name"])),
                comment=None,
                tenant=t["name"],
                environment=env.name,
                consumes=tuple(
                    Contract(
                        "iam_role",
                        r,
                        env.name,
                        common.chained_trust(entry),
                        contract_at(model, "environment", env.name, "disaster_recovery"),
                    )
                    for r in roles
                ),
            )


def tenant_page_path(env: str, tenant: str) -> str:
    return f"rendered/runbooks/{env}/tenants/{tenant}.md"


def plan(model: Model, env: spec.Environment, ctx: dict[str, Any]) -> dict[str, Any]:
    """What the failover workflow reads at run time: no tenant is listed in the workflow."""
    assert env.disaster_recovery is not None
    return {
        "environment": env.name,
        "dr_region": env.aws.dr_region,
        "primary_region": env.aws.region,
        "rto_minutes": env.rto_minutes,
        "rpo_minutes": env.rpo_minutes,
        "failover_role": naming.ci_role_arn(env.accounts.shared_services, model.platform, "failover"),
        "databases": [
            {
                "owner": o["owner"],
                "replica": o["replica"],
                "primary": o["db"],
                "kms_key": f"alias/{o['kms_alias']}",
                "role": naming.ci_role_arn(o["account"], model.platform, "failover"),
            }
            for o in ctx["owners"]
        ],
    }


def tenant_plan(model: Model, env: spec.Environment, t: dict[str, Any], hosts: list[dict[str, str]]) -> dict[str, Any]:
    """``rendered/runbooks/<env>/failover/<tenant>.json``, read by the failover workflows with
    a glob (or alone, for one tenant): the database secrets repointed at its owner's promoted
    replica (in the tenant's account, by that account's failover role) and the hosts whose
    health checks are inverted. ``owner`` names the plan's database serving the tenant;
    ``pooled`` says it is a pool's, shared with other tenants, so the tenant cannot be failed
    over alone (the workflows refuse; the whole environment moves the pool)."""
    assert env.disaster_recovery is not None
    role = naming.ci_role_arn(t["account"], model.platform, "failover")
    return {
        "tenant": t["name"],
        "owner": t["owner"],
        "pooled": not t["dedicated"],
        # served from the DR region now: with the whole environment (active), alone (listed in
        # active_tenants; what a failback of the tenant undoes) or not (null)
        "failed_over": "environment" if env.disaster_recovery.active else ("tenant" if common.failed_over(env, t["name"]) else None),
        "secrets": [{"tenant": t["name"], "role": role, "names": t["db_secrets"]}] if t["db_secrets"] else [],
        "hosts": [{**h, "path": env.disaster_recovery.health_check_path, "role": role} for h in hosts],
    }


def tenant_plan_path(env: str, tenant: str) -> str:
    return f"rendered/runbooks/{env}/failover/{tenant}.json"


def plan_roles(model: Model, env: spec.Environment, the_plan: dict[str, Any]) -> tuple[Contract, ...]:
    """The roles the failover and failback workflows assume, as the plan names them: the entry
    role trusts GitHub behind the environment's approval, every other one only the entry role."""
    where = contract_at(model, "environment", env.name, "disaster_recovery")
    entry = the_plan["failover_role"]
    chained = {db["role"] for db in the_plan["databases"]}
    out = [Contract("iam_role", entry, env.name, common.github_trust(model.platform, env.name), where)]
    out += [Contract("iam_role", role, env.name, common.chained_trust(entry), where) for role in sorted(chained)]
    return tuple(out)


def context(model: Model, env: spec.Environment) -> dict[str, Any]:
    """Every value a runbook names, per data owner (pools and dedicated tenants) and host.
    ``tenants`` and ``hosts`` are the rendered tenants' only (their pages and failover plans;
    the environment's runbooks name no tenant): an incremental render makes a few rows, not
    30,000 at 10,000 tenants."""
    platform = model.platform
    owners: dict[str, dict[str, Any]] = {}
    hosts: list[dict[str, str]] = []
    tenants: list[dict[str, Any]] = []
    sources: set[str] = set()
    for d in model.in_environment(env.name):
        if d.account_pending:  # held until `companyos record-accounts`: no id to name yet
            continue
        sources.add(model.source("tenant", d.name))
        owner = d.name if d.dedicated else naming.pool_root(d.tier.name)
        if owner not in owners:  # a pool's row, made once (not once per pooled tenant, then dropped)
            account = d.account_id if d.dedicated else env.accounts.pools[d.tier.name]
            owners[owner] = {
                "owner": owner,
                "account": account,
                "db": naming.resource_prefix(platform, env.name, owner),
                "db_arn": f"arn:aws:rds:{env.aws.region}:{account}:db:{naming.resource_prefix(platform, env.name, owner)}",
                "replica": dr.replica_identifier(platform, env.name, owner),
                "replica_arn": f"arn:aws:rds:{env.aws.dr_region}:{account}:db:{dr.replica_identifier(platform, env.name, owner)}",
                "vault": dr.backup_vault(platform, env.name, owner),
                "kms_alias": naming.kms_alias(platform, env.name, owner),
            }
        if not model.renders(d.name):
            continue  # its page is not rendered (an incremental render): no row, no hosts
        secrets = [naming.secret_key(ref.key, d.name, d.env) for svc in d.services for ref in svc.secrets]
        db_secrets = sorted({naming.db_secret_key(platform, env.name, d.name, svc.name) for svc in d.services if svc.uses_database})
        tenants.append(
            {
                "name": d.name,
                "account": d.account_id,
                "namespace": d.namespace,
                "secrets": sorted(set(secrets)),
                "db_secrets": db_secrets,
                "owner": owner,
                "dedicated": d.dedicated,
            }
        )
        for svc in d.services:
            if d.public_ingress(svc):
                host = naming.hostname(svc.name, d.name, env)
                hosts.append(
                    {"tenant": d.name, "account": d.account_id, "service": svc.name, "host": host, "failover": dr.failover_hostname(host)}
                )
    shared = env.accounts.shared_services
    return {
        "env": env,
        "platform": platform,
        "standby": env.disaster_recovery,
        "cluster": naming.cluster_name(platform, env.name),
        "standby_cluster": dr.standby_cluster(platform, env.name),
        "shared_account": shared,
        "dr_verify": env.accounts.dr_verify,
        "verify_vault_arn": f"arn:aws:backup:{env.aws.dr_region}:{env.accounts.dr_verify}:backup-vault:{dr.verify_vault(platform, env.name)}",
        "drill_document": dr.drill_document(platform, env.name),
        # where the restore drill puts and checks its copies (the shared root's dr.tf)
        "restore_drill": common.restore_drill(platform, env.name, env.aws.dr_region, env.accounts.dr_verify)
        if env.disaster_recovery is not None
        else None,
        "owners": [owners[k] for k in sorted(owners)],
        "tenants": sorted(tenants, key=lambda t: t["name"]),
        "hosts": sorted(hosts, key=lambda h: h["host"]),
        "sources": sorted(sources),
    }
