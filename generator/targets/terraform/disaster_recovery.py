"""The standby region of an environment that declares ``disaster_recovery`` (issue 15): ``dr.tf``.

Per root, what failing over to ``aws.dr_region`` needs: the shared root gets the scaled-down
standby EKS cluster, ECR replication, the FIS chaos templates (stopped by the SLO alarm) and
the SSM Automation of the region drill; data roots (pools, dedicated tenants) a cross-region
read replica with a lag alarm at the RPO, AWS Backup (35 days, PITR, copies to the DR region
and the ``dr-verify`` account), Redis snapshots every 6 hours and, when regulated, S3
replication; every root a multi-region KMS key and its replica (secrets replicate under it);
tenant roots with public hosts Route53 health checks, PRIMARY/SECONDARY records and a CloudFront
origin group. Decisions here; layout in ``templates/terraform/disaster_recovery.tf.j2``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Protocol

from generator.catalog import spec
from generator.formats.templating import Templates
from generator.model import naming, networks
from generator.model.resolve import Deployment, Model
from generator.targets import common
from generator.targets.base import RenderedFile
from generator.targets.terraform import addressing
from generator.targets.terraform.hcl import format_hcl


class Root(Protocol):
    """What this module reads of a Terraform root (``target.Root``; a protocol, not an import:
    the target imports this module)."""

    kind: str
    name: str
    settings: spec.Settings
    env: spec.Environment
    deployment: Deployment | None
    names: dict[str, str]
    edge: list[tuple[str, str]]
    sources: list[str]
    account: str
    secrets: list[dict[str, Any]]
    network: Any

    @property
    def tenant(self) -> str | None: ...

    @property
    def dir(self) -> str: ...


FILENAME = "dr.tf"
TEMPLATE = "terraform/disaster_recovery.tf.j2"

#: Redis snapshots (EventBridge Scheduler): every 6 hours.
CACHE_SNAPSHOT_EVERY_HOURS = 6
#: FIS: a fast burn (14.4x the budget over 5 minutes) of the strictest availability SLO stops chaos.
FAST_BURN = Decimal("14.4")
#: How long every AWS Backup recovery point is kept (and its copies).
BACKUP_DAYS = 35
#: The daily-copies backup rule (UTC hour): the recovery point dr-verify and the DR region get.
COPY_HOUR = 4
#: The integrity recorder runs this many minutes before it, so that recovery point holds the manifest.
RECORDER_LEAD_MINUTES = 20
#: The backup-time integrity SQL (also rendered to rendered/ci/integrity-record.sql for the docs and drills).
RECORDER_TEMPLATE = "workflows/integrity-record.sql.j2"
#: The restore drill's check of a restored copy (also rendered/ci/restore-integrity.sql): the verifier runs it.
VERIFIER_TEMPLATE = "workflows/restore-integrity.sql.j2"
#: The verifier prints its integrity JSON in chunks of at most this many bytes, one log event
#: each (a container log line over 16 KiB is split by the log driver); the drill joins them.
VERIFIER_CHUNK_BYTES = 8000
#: The interface endpoints the drill VPC needs (no NAT, no internet gateway): the image pull
#: through the ECR pull-through cache and the task's logs; S3 (image layers) is a gateway endpoint.
DRILL_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs")


def enabled(env: spec.Environment) -> bool:
    return env.disaster_recovery is not None


def standby_cluster(platform: spec.Platform, env: str) -> str:
    """The standby EKS cluster in the DR region (registered in Argo CD, scaled to zero)."""
    return common.standby_cluster(platform, env)


def dr_origin_hostname(tenant: str, env: spec.Environment) -> str:
    """The record the standby cluster's external-dns keeps for the tenant's DR ingress."""
    return f"origin-dr.{tenant}.{env.domain}"


def failover_hostname(host: str) -> str:
    """The Route53 failover name (PRIMARY/SECONDARY) of a public host, in the same zone."""
    label, _, rest = host.partition(".")
    return f"{label}-failover.{rest}"


def replica_identifier(platform: spec.Platform, env: str, owner: str) -> str:
    """The cross-region read replica of a pool's or dedicated tenant's database."""
    return f"{naming.resource_prefix(platform, env, owner)}-dr"


def backup_vault(platform: spec.Platform, env: str, owner: str) -> str:
    return f"{naming.resource_prefix(platform, env, owner)}-backups"


def verify_vault(platform: spec.Platform, env: str) -> str:
    """The vault in the ``dr-verify`` account that receives every copy (restore drills)."""
    return common.verify_vault(platform, env)


def drill_document(platform: spec.Platform, env: str) -> str:
    return common.region_drill_document(platform, env)


def slo_alarm(platform: spec.Platform, env: str) -> str:
    return f"{platform.organization}-{env}-slo-fast-burn"


def error_ratio_threshold(model: Model, env: str) -> float:
    """Percent of 5xx answers that burns the strictest availability budget of the environment
    14.4 times too fast (the SLO page); chaos stops there."""
    objectives = [Decimal(str(s.slo.availability.objective)) for d in model.in_environment(env) for s in d.settings.services.values()]
    best = max(objectives, default=Decimal("99.9"))
    return float((100 - best) * FAST_BURN)


def context(model: Model, root: Root) -> dict[str, Any]:
    """What ``dr.tf`` of ``root`` needs, already decided."""
    env = root.env
    dr = env.disaster_recovery
    assert dr is not None
    platform = model.platform
    owner = root.tenant if root.tenant is not None else (root.name if root.kind == "pool" else naming.SHARED_ROOT)
    has_data = root.kind in ("pool", "dedicated")
    regulated = root.deployment is not None and root.deployment.tier.regulated
    hosts = []
    if root.deployment is not None:
        probe = dr.health_check_path
        for svc, host in root.edge:
            hosts.append({"service": svc, "slug": svc.replace("-", "_"), "host": host, "failover": failover_hostname(host), "path": probe})
    return {
        "region": env.aws.dr_region,
        "primary_region": env.aws.region,
        "replication": dr.replication,
        "rpo_seconds": env.rpo_minutes * 60,
        "standby": {
            "cluster": standby_cluster(platform, env.name),
            "nodes": dr.standby_nodes,
            "max_nodes": max(dr.standby_nodes, root.settings.network.az_count * 10),
            "instance_type": dr.standby_instance_type,
        },
        "kms_alias": f"{root.names.get('kms_alias', naming.kms_alias(platform, env.name, owner))}/multi-region",
        "data": has_data,
        "replica": replica_identifier(platform, env.name, owner) if has_data and dr.replication == "replica" else None,
        "backup_vault": backup_vault(platform, env.name, owner),
        "verify_vault_arn": f"arn:aws:backup:{env.aws.dr_region}:{env.accounts.dr_verify}:backup-vault:{verify_vault(platform, env.name)}",
        "backup_days": BACKUP_DAYS,
        "copy_cron": f"0 {COPY_HOUR} * * ? *",
        "recorder": recorder(platform, root) if has_data else None,
        "cache_snapshot_hours": CACHE_SNAPSHOT_EVERY_HOURS,
        "s3_replication": has_data and regulated,
        "hosts": hosts,
        "origin": root.names.get("origin", ""),
        "dr_origin": dr_origin_hostname(root.tenant, env) if root.tenant is not None else "",
        "drill_document": drill_document(platform, env.name),
        "fis_names": common.fis_template_names(platform, env.name),
        "drill_record": f"drill.{env.domain}",
        "slo_alarm": slo_alarm(platform, env.name),
        "slo_threshold": error_ratio_threshold(model, env.name) if root.kind == "shared" else 0.0,
        "namespaces": sorted({d.namespace for d in model.in_environment(env.name)}) if root.kind == "shared" else [],
        "ci": ci_roles(model, root),
        "drill": restore_drill(model, root) if root.kind == "shared" else None,
        # Argo CD's registration of the standby cluster (targets/argocd/standby.py reads the same names).
        "argocd": {
            "namespace": platform.argocd_namespace,
            "service_account": common.ARGOCD_CONTROLLER_SA,
            "role": common.argocd_standby_role(platform, env.name),
            "secret": common.argocd_standby_secret(platform, env.name),
        },
    }


def recorder(platform: spec.Platform, root: Root) -> dict[str, str]:
    """The scheduled Fargate task that writes the integrity manifest before the daily copy;
    psql of the database's engine version by digest (postgres_client, CO040; its SQL: ``files``)."""
    minutes = COPY_HOUR * 60 - RECORDER_LEAD_MINUTES
    hour, minute = divmod(minutes, 60)
    return {
        "cron": f"{minute} {hour} * * ? *",
        "schedule": f"{hour:02d}:{minute:02d}",
        "image": platform.postgres_client.image(root.settings.database.engine_version),
    }


def engine_version(model: Model, env: str) -> str:
    """The newest PostgreSQL engine version among the environment's databases: psql works with
    servers of its own and older major versions, so the verifier's client of this version reads
    every restored copy (its digest is pinned: CO040 covers every version in use)."""
    versions = {d.settings.database.engine_version for d in model.in_environment(env)}
    versions = versions or {model.base_settings(None, env).database.engine_version}
    return max(versions, key=lambda v: tuple(int(part) for part in v.split(".")))


def restore_drill(model: Model, root: Root) -> dict[str, Any]:
    """The restore drill's isolated network and verifier in the ``dr-verify`` account (shared
    root, provider ``aws.dr_verify``): a private-only VPC at the DR twin of the ``restore-drill``
    allocation, the ``restore-drill`` DB subnet group, the restored copies' security group (5432
    from the verifier only), and the Fargate verifier running the pinned psql image through an
    ECR pull-through cache (the VPC has no route out; endpoints instead of a NAT gateway)."""
    platform, env = model.platform, root.env
    verify, region = env.accounts.dr_verify, env.aws.dr_region
    names = common.restore_drill(platform, env.name, region, verify)
    entry = networks.networks_entry(model.catalog)
    assert entry is not None, "networks.yaml is required and checked at load time"
    cidr = networks.dr_cidr(entry.spec, env.name, networks.DRILL_VPC)
    private, _ = addressing.subnets(cidr, root.settings.network.az_count)
    client = platform.postgres_client
    version = engine_version(model, env.name)
    cache = f"{verify}.dkr.ecr.{region}.amazonaws.com/{names['cache_prefix']}"
    image = client.cached_image(version, cache)
    repository = client.repository.split("/", 1)[1]
    return {
        **names,
        "cidr": str(cidr),
        "azs": list(root.network.dr_azs),
        "private": private,
        "endpoints": list(DRILL_ENDPOINTS),
        "engine_version": version,
        "image": image,
        "upstream_registry": client.upstream_registry(),
        "repository_arn": f"arn:aws:ecr:{region}:{verify}:repository/{names['cache_prefix']}/{repository}",
        "chunk_bytes": VERIFIER_CHUNK_BYTES,
        "stream_prefix": names["container"],
        "command": verifier_command(names["integrity_mark"], names["smoke_mark"]),
    }


def verifier_command(integrity: str, smoke: str) -> str:
    """The verifier's shell: the integrity SQL (``VERIFY_SQL``) and the smoke query against the
    restored copy (``PG*`` from the task's environment and the run's override), their answers
    printed to the log stream behind markers; the exit code is the integrity query's."""
    return (
        "integrity=$(printf '%s\\n' \"$VERIFY_SQL\" | psql -v ON_ERROR_STOP=1 -q -At); rc=$?; "
        "answer=$(psql -At -c 'select 1') || answer=0; "
        f"printf '%s\\n' \"$integrity\" | fold -b -w {VERIFIER_CHUNK_BYTES} | sed 's/^/{integrity} /'; "
        f'echo "{smoke} $answer"; exit $rc'
    )


def github_subjects(platform: spec.Platform, env: str) -> dict[str, str]:
    """The ``sub`` claims the DR roles trust: failover/failback run behind the environment's
    approval (``environment: <env>``), the scheduled drills on the platform revision only."""
    trust = common.github_trust
    return {"environment": trust(platform, env).removeprefix("trusts "), "branch": trust(platform).removeprefix("trusts ")}


def failover_accounts(model: Model, env: spec.Environment) -> list[str]:
    """Accounts whose ``<org>-ci-failover`` role the shared one chains into: the data owners'
    (replicas) and the tenants' (database secrets, health checks), as the failover plan lists."""
    accounts = {d.account_id for d in model.in_environment(env.name)}
    accounts |= {env.accounts.pools[d.tier.name] for d in model.in_environment(env.name) if not d.dedicated}
    return sorted(accounts - {env.accounts.shared_services})


def copy_sources(model: Model, env: spec.Environment) -> list[str]:
    """The accounts whose backup plans copy into the dr-verify vault (pool and dedicated roots)."""
    deployments = model.in_environment(env.name)
    return sorted(
        {d.account_id for d in deployments if d.dedicated} | {env.accounts.pools[d.tier.name] for d in deployments if not d.dedicated}
    )


def failover_role_owner(root: Root) -> bool:
    """One ``<org>-ci-failover`` per account: pooled tenants live in their pool's account, so
    the pool root's role covers them (by name pattern; health check ids exist only after apply)."""
    return root.kind in ("pool", "dedicated")


def ci_roles(model: Model, root: Root) -> dict[str, Any]:
    """The CI roles the DR workflows assume (``naming.ci_role_arn``), produced where they live:
    the shared root (failover entry, region drill, chaos; the dr-verify vault, restore role and
    restore-drill role through ``aws.dr_verify``) and each data root (the chained failover role)."""
    platform, env = model.platform, root.env
    org = platform.organization
    shared_failover = naming.ci_role_arn(env.accounts.shared_services, platform, "failover")
    out: dict[str, Any] = {
        "issuer": naming.GITHUB_OIDC_ISSUER.removeprefix("https://"),
        "subjects": github_subjects(platform, env.name),
        "failover": f"{org}-ci-failover",
        "trusted": shared_failover,
        "owner": failover_role_owner(root),
    }
    if root.kind == "shared":
        out.update(
            {
                "chained": [naming.ci_role_arn(a, platform, "failover") for a in failover_accounts(model, env)],
                "region_drill": f"{org}-ci-region-drill",
                "chaos": f"{org}-ci-chaos",
                "restore_drill": f"{org}-ci-restore-drill",
                "backup_restore": f"{org}-backup-restore",
                "verify_account": env.accounts.dr_verify,
                "verify_vault": verify_vault(platform, env.name),
                "copy_sources": [f"arn:aws:iam::{a}:root" for a in copy_sources(model, env)],
            }
        )
    elif out["owner"]:
        # a dedicated tenant's own database secrets; in a pool account, every database secret
        # of the environment's pooled tenants (<org>/<env>/<tenant>/<service>/database)
        names = [s["name"] for s in root.secrets if s["kind"] == "database"] if root.kind == "dedicated" else []
        names = names or [naming.db_secret_key(platform, env.name, "*", "*")]
        regions = (env.aws.region, env.aws.dr_region)
        out["secret_arns"] = [
            f"arn:aws:secretsmanager:{region}:{root.account}:secret:{name}-??????" for region in regions for name in names
        ]
    return out


_BLOCK = re.compile(r'\n(resource|data) "(aws_iam_role|aws_iam_policy_document)" "(\w+)" \{\n(.*?)\n\}', re.S)
_ROLE_NAME = re.compile(r'^  name\s*=\s*"([^"]+)"', re.M)
_TRUST_DOC = re.compile(r"assume_role_policy\s*=\s*data\.aws_iam_policy_document\.(\w+)\.json")
_PRINCIPAL = re.compile(r'type\s*=\s*"(\w+)"\s*identifiers\s*=\s*\[([^\]]*)\]')
_SUB = re.compile(r'variable\s*=\s*"[^\n]*:sub"\s*values\s*=\s*\[([^\]]*)\]')
_QUOTED = re.compile(r'"([^"]*)"')
_VERIFY = re.compile(r"^  provider\s*=\s*aws\.dr_verify$", re.M)


def rendered_roles(root: Root, text: str) -> list[tuple[str, str]]:
    """(ARN, trust) of each IAM role ``dr.tf`` renders, read from the text (so a template that
    drops a role or widens its trust breaks the ``iam_role`` contract the workflows, the failover
    plan and Argo CD's values consume): ``trusts <sub claim>`` for GitHub OIDC, ``ns:sa`` for
    a cluster's service account, ``assumable by <arn>`` for a chained role, ``trusts <service>``."""
    blocks = {(kind, name): body for kind, _, name, body in _BLOCK.findall("\n" + text)}
    out: list[tuple[str, str]] = []
    for (kind, _), body in blocks.items():
        if kind != "resource" or (name := _ROLE_NAME.search(body)) is None or (doc := _TRUST_DOC.search(body)) is None:
            continue
        account = root.env.accounts.dr_verify if _VERIFY.search(body) else root.account
        trust = blocks.get(("data", doc.group(1)), "")
        subjects = [v for m in _SUB.findall(trust) for v in _QUOTED.findall(m)]
        for ptype, identifiers in _PRINCIPAL.findall(trust):
            if ptype == "Federated" and subjects:
                github = "token.actions.githubusercontent.com" in identifiers or "aws_iam_openid_connect_provider.github" in identifiers
                details = [f"trusts {sub}" if github else sub.removeprefix("system:serviceaccount:") for sub in subjects]
            elif ptype == "AWS":
                details = [common.chained_trust(arn) for arn in _QUOTED.findall(identifiers)]
            else:
                details = [f"trusts {svc}" for svc in _QUOTED.findall(identifiers)]
            out += [(f"arn:aws:iam::{account}:role/{name.group(1)}", d) for d in details]
    return out


_RESOURCE = re.compile(r'\nresource "(\w+)" "(\w+)" \{\n(.*?)\n\}', re.S)
_NAME = re.compile(r'^  (?:name|family)\s*=\s*"([^"]+)"', re.M)
_CONTAINER = re.compile(r'^      name\s*=\s*"([^"]+)"', re.M)
_LOG_GROUP = re.compile(r"awslogs-group\s*=\s*aws_cloudwatch_log_group\.(\w+)\.name")


def rendered_verifiers(root: Root, text: str) -> list[tuple[str, str]]:
    """(task definition ARN without revision, ``ecs_task`` detail) of each task definition
    ``dr.tf`` renders in the ``dr-verify`` account, read from the text: its container, its log
    group, and the cluster, network parameter and DB subnet group beside it there (so a template
    that drops or renames any of them breaks the contract the restore-drill workflow consumes)."""
    names: dict[str, dict[str, str]] = {}  # resource type -> label -> its name
    tasks: dict[str, str] = {}  # task definition label -> its body
    for rtype, label, body in _RESOURCE.findall("\n" + text):
        if _VERIFY.search(body) and (name := _NAME.search(body)) is not None:
            names.setdefault(rtype, {})[label] = name.group(1)
            if rtype == "aws_ecs_task_definition":
                tasks[label] = body
    env = root.env
    only = {
        key: next(iter(names.get(rtype, {}).values()), None) if len(names.get(rtype, {})) == 1 else None
        for key, rtype in (("cluster", "aws_ecs_cluster"), ("parameter", "aws_ssm_parameter"), ("subnet_group", "aws_db_subnet_group"))
    }
    out = []
    for label, family in sorted(names.get("aws_ecs_task_definition", {}).items()):
        container, group = _CONTAINER.search(tasks[label]), _LOG_GROUP.search(tasks[label])
        found = {
            **only,
            "container": container.group(1) if container else None,
            "log_group": names.get("aws_cloudwatch_log_group", {}).get(group.group(1)) if group else None,
        }
        detail = common.restore_verifier_detail(found)
        out.append((f"arn:aws:ecs:{env.aws.dr_region}:{env.accounts.dr_verify}:task-definition/{family}", detail))
    return out


def files(model: Model, templates: Templates, root: Root, base: dict[str, Any]) -> Iterator[RenderedFile]:
    """``dr.tf`` of ``root`` when its environment has a standby region; nothing otherwise."""
    if not enabled(root.env):
        return
    dr = context(model, root)
    if dr["recorder"] is not None:
        dr["recorder"]["sql"] = templates.render(RECORDER_TEMPLATE)
    if dr["drill"] is not None:
        dr["drill"]["sql"] = templates.render(VERIFIER_TEMPLATE)
    text = format_hcl(templates.render(TEMPLATE, dr=dr, **base))
    sources = (*root.sources, templates.path(TEMPLATE), templates.path("terraform/_blocks.tf.j2"))
    if dr["recorder"] is not None:
        sources = (*sources, templates.path(RECORDER_TEMPLATE))
    if dr["drill"] is not None:
        sources = (*sources, templates.path(VERIFIER_TEMPLATE))
    yield RenderedFile(
        path=f"{root.dir}/{FILENAME}", text=text, sources=sources, tenant=root.tenant, environment=root.env.name, root=root.dir
    )
