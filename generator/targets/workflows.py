"""GitHub Actions workflows: ``.github/workflows/<name>.yml``.

Text templates (``templates/workflows/*.yml.j2``) whose varying parts all come from the model:
environments in promotion order, accounts, change windows, services with migrations, tool
versions and action pins (``ci`` in ``catalog/platform.yaml``). Hand-written workflows beside
them are never in the manifest, so never touched. The security rules the templates follow
(least permissions, SHA-pinned actions, no ``${{`` in ``run:``, context-quoted catalog values):
docs/ci.md ("Security rules").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from generator.catalog import spec
from generator.errors import CatalogError, CatalogErrors, Location
from generator.formats.templating import Templates, comment_text, shell_join, shell_word
from generator.model import naming
from generator.model.ci import LINT_UNITS_PER_JOB, MAX_JOBS
from generator.model.resolve import Model
from generator.targets import common as hardening
from generator.targets import release
from generator.targets.base import RenderedFile
from generator.targets.contracts import Contract
from generator.targets.contracts import at as contract_at

NAME = "workflows"
TEMPLATE_DIR = "workflows"
MACROS = f"{TEMPLATE_DIR}/_steps.j2"
PREVIEW_TEMPLATE = f"{TEMPLATE_DIR}/preview-values.yaml.j2"
BATCH_TEMPLATE = f"{TEMPLATE_DIR}/terraform-batch.sh.j2"
#: What a terraform job runs for its batch of roots (one file, not a copy in every job).
BATCH_SCRIPT = "rendered/ci/terraform-batch.sh"
PLAN_POLICY_DIR = "rendered/policy/terraform"
#: The restore drill's integrity query (restored copy against the backup-time manifest) and the
#: recorder that writes that manifest (docs/resilience.md).
INTEGRITY_TEMPLATE = f"{TEMPLATE_DIR}/restore-integrity.sql.j2"
INTEGRITY_SQL = "rendered/ci/restore-integrity.sql"
RECORDER_TEMPLATE = f"{TEMPLATE_DIR}/integrity-record.sql.j2"
RECORDER_SQL = "rendered/ci/integrity-record.sql"

#: GitHub runs at most 256 jobs per matrix; bigger matrices are split into shards of this size.
MAX_MATRIX = 250

#: The migration dry-run database; the tag follows the engine version the catalog runs.
POSTGRES_IMAGE = "postgres"


@dataclass(frozen=True)
class Workflow:
    name: str
    #: Which kinds of catalog file the workflow's content depends on (header + manifest).
    needs: tuple[str, ...]
    #: The context key that must be truthy for the workflow to exist (None: always written).
    when: str | None = None


WORKFLOWS = (
    Workflow("render-check", ("platform", "environment")),
    Workflow("terraform", ("platform", "environment")),
    Workflow("drift", ("platform",)),
    Workflow("migrations", ("platform", "service"), when="migrations"),
    Workflow("deploy", ("platform", "environment", "service")),
    Workflow("previews", ("platform", "environment", "service"), when="preview"),
    # Deletes pr-* namespaces whose TTL label has passed (docs/cost.md, issue 18).
    Workflow("preview-sweeper", ("platform", "environment"), when="preview"),
    Workflow("restore-drill", ("platform", "environment")),
    Workflow("chaos-drill", ("platform", "environment")),
    Workflow("failover", ("platform", "environment"), when="standby"),
    Workflow("failback", ("platform", "environment"), when="standby"),
    Workflow("region-drill", ("platform", "environment"), when="standby"),
    Workflow("chaos-fis", ("platform", "environment"), when="standby"),
    Workflow("postmortem-reminder", ("platform",)),
)


IDLE_TEMPLATE = f"{TEMPLATE_DIR}/preview-idle-scaling.yaml.j2"
PREVIEW_EXPIRES_LABEL = "companyos.io/preview-expires"


def preview_values_path(service: str, env: str = "dev") -> str:
    """The preview Helm values of ``service`` in the environment previews run in (the first
    of the promotion chain; ``dev`` in the sample catalog)."""
    return f"rendered/previews/{env}/{service}.yaml"


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    ctx = context(model)
    macros = templates.path(MACROS)
    for wf in WORKFLOWS:
        if wf.when is not None and not ctx[wf.when]:
            continue
        template = f"{TEMPLATE_DIR}/{wf.name}.yml.j2"
        sources = sorted({model.source(kind, name) for kind, name in model.sources if kind in wf.needs})
        yield RenderedFile(
            path=naming.workflow_path(wf.name),
            text=templates.render(template, **ctx),
            sources=(*sources, templates.path(template), macros),
            consumes=_dr_roles(model, wf.name),
        )
    yield RenderedFile(
        path=BATCH_SCRIPT,
        text=templates.render(BATCH_TEMPLATE, batch_script=BATCH_SCRIPT, policy_dir=PLAN_POLICY_DIR),
        sources=(templates.path(BATCH_TEMPLATE),),
    )
    for path, template in ((INTEGRITY_SQL, INTEGRITY_TEMPLATE), (RECORDER_SQL, RECORDER_TEMPLATE)):
        yield RenderedFile(path=path, text=templates.render(template), sources=(templates.path(template),), comment="--")
    if ctx["preview"] is not None:
        for svc in ctx["preview"]["services"]:
            yield RenderedFile(
                path=svc["values_file"],
                text=templates.render(
                    PREVIEW_TEMPLATE,
                    svc=svc,
                    chart=svc["chart"],
                    pod_security=hardening.pod_security_context(),
                    container_security=hardening.container_security_context(),
                ),
                sources=(model.source("platform", "platform"), model.source("service", svc["name"]), templates.path(PREVIEW_TEMPLATE)),
                environment=ctx["preview"]["env"],
            )
    if ctx["preview"] is not None and ctx["preview"]["idle"] is not None:
        idle = ctx["preview"]["idle"]
        yield RenderedFile(
            path=idle["path"],
            text=templates.render(IDLE_TEMPLATE, hours=idle["hours"], documents=idle["documents"]),
            sources=(
                model.source("environment", ctx["preview"]["env"]),
                *(model.source("service", svc["name"]) for svc in ctx["preview"]["services"]),
                templates.path(IDLE_TEMPLATE),
            ),
            environment=ctx["preview"]["env"],
        )
    yield from release.render(model, templates, ctx)


def _dr_roles(model: Model, workflow: str) -> tuple[Contract, ...]:
    """The AWS roles the DR workflows assume (issue 15), each with the trust it needs: the
    shared root's dr.tf produces them (failover/failback: the failover plan's contracts)."""
    out: list[Contract] = []
    for env in model.environments:
        if env.disaster_recovery is None:
            continue
        where = contract_at(model, "environment", env.name, "disaster_recovery")
        shared, verify, platform = env.accounts.shared_services, env.accounts.dr_verify, model.platform
        trust = hardening.github_trust(platform)
        if workflow == "region-drill":
            out.append(Contract("iam_role", naming.ci_role_arn(shared, platform, "region-drill"), env.name, trust, where))
        if workflow == "chaos-fis":
            out.append(Contract("iam_role", naming.ci_role_arn(shared, platform, "chaos"), env.name, trust, where))
        if workflow == "restore-drill" and env is model.environments[-1]:
            restore = f"arn:aws:iam::{verify}:role/{platform.organization}-backup-restore"
            out.append(Contract("iam_role", naming.ci_role_arn(verify, platform, "restore-drill"), env.name, trust, where))
            out.append(Contract("iam_role", restore, env.name, "trusts backup.amazonaws.com", where))
            drill = hardening.restore_drill(platform, env.name, env.aws.dr_region, verify)
            detail = hardening.restore_verifier_detail(drill)
            out.append(Contract("ecs_task", drill["task_definition_arn"], env.name, detail, where))
    return tuple(out)


def gh(expression: str) -> str:
    """A GitHub expression, ``${{ expression }}`` (Jinja owns ``{{ }}`` in templates)."""
    return "${{ " + expression + " }}"


#: Catalog kinds whose values reach a workflow (directly, or through names derived from them).
GUARDED_KINDS = ("platform", "environment", "service", "tenant", "tier")


class _Guard:
    """Rejects catalog strings GitHub would evaluate (``${{``) before they reach a workflow.

    Quoting keeps a value inside its YAML string, but GitHub evaluates ``${{ }}`` inside any
    string (step names, ``env:``, ``with:``), so every string of every catalog file the
    workflows read is checked, keys included, not a list of fields that could go stale."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.errors: list[CatalogError] = []

    def scan(self) -> None:
        for kind in GUARDED_KINDS:
            for entry in self.model.catalog.of(kind).values():
                self._walk(entry, entry.doc.data, ())

    def _walk(self, entry: Any, value: Any, keypath: tuple[str | int, ...]) -> None:
        if isinstance(value, str):
            if "${{" in value:  # located only then: every string of 10,000 tenant files is walked
                self._refuse(entry.locate(*keypath))
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and "${{" in key:
                    self._refuse(entry.locate(*keypath, key, key=True))
                self._walk(entry, item, (*keypath, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self._walk(entry, item, (*keypath, i))

    def _refuse(self, where: Location) -> None:
        self.errors.append(CatalogError(where, "'${{' is not allowed here: GitHub Actions would evaluate it inside a generated workflow"))


def context(model: Model) -> dict[str, Any]:
    """Everything the workflow templates read; values already checked and quoted."""
    guard = _Guard(model)
    guard.scan()
    ci = model.platform.ci

    def uses(action: str) -> str:
        pin = ci.actions.get(action)
        if pin is None:
            entry = model.catalog.platform
            raise CatalogErrors(
                [
                    CatalogError(
                        entry.locate("ci", "actions", key=True),
                        f"the generated workflows use {action}; pin it under ci.actions (sha and tag)",
                    )
                ]
            )
        return f"{action}@{pin.sha} # {comment_text(pin.tag)}"

    envs = [_environment(model, e) for e in model.environments]
    ctx = {
        "ci": ci,
        "platform": model.platform,
        "uses": uses,
        "gh": gh,
        "sh": shell_word,
        "environments": envs,
        "env_names": [e["name"] for e in envs],
        "services": sorted(model.services),
        "migrations": _migrations(model),
        "preview": _preview(model, envs),
        "restore_chunks": _chunks(_restore_targets(model)),
        "restore_integrity_sql": INTEGRITY_SQL,
        **_terraform_layers(envs),
        # environments with disaster_recovery: the failover workflow's choices (targets/runbooks.py plans)
        "standby": [
            _standby(model, env, row) for env, row in zip(model.environments, envs, strict=True) if env.disaster_recovery is not None
        ],
        # the tenant input of failover/failback is checked against the catalog's name pattern
        "name_pattern": spec.NAME_PATTERN,
        "chaos": [_chaos(model, env, row) for env, row in zip(model.environments, envs, strict=True) if env.name in ci.chaos_environments],
    }
    if guard.errors:
        raise CatalogErrors(guard.errors)
    return ctx


#: Plan and apply order: the organization root, then each environment's shared root, its
#: pools, its tenants (each layer reads what the previous one created).
TERRAFORM_LAYERS = ("org", "shared", "pool", "tenant")
#: The tenant layer plans and applies as this many matrices (each at most :data:`MAX_JOBS`
#: jobs; shard K takes every N-th affected root): a fixed number, so the workflow's shape
#: never depends on the fleet. With 3 minutes per plan and 10 per apply (output/limits.py)
#: that is 40,960 tenant roots per plan (120-minute jobs) and 18,432 per environment's apply
#: (180-minute jobs); one matrix would stop at 10,240 and 4,608.
TENANT_SHARDS = 4
#: Applies running at once per layer of an environment (its shards share it: 1 each).
APPLY_PARALLEL = 4
#: The nightly drift plan of every root runs as this many matrices (shard S: every N-th root
#: from the S-th), sharing :data:`DRIFT_PARALLEL` plans at once: 61,440 roots fit its
#: 180-minute jobs at ~3 minutes per root (one matrix: 15,360, i.e. ~5,000 tenants).
DRIFT_SHARDS = 4
DRIFT_PARALLEL = 8


def layer_shards(layer: str) -> list[str | None]:
    """The shard specs (``K/N``) a layer's plan or apply runs as; ``[None]``: one matrix."""
    return [f"{k}/{TENANT_SHARDS}" for k in range(1, TENANT_SHARDS + 1)] if layer == "tenant" else [None]


def shard_suffix(shard: str | None, sep: str = "-") -> str:
    """``-K-of-N`` (job names) or ``_K_of_N`` (output names) of a shard, "" for none."""
    if shard is None:
        return ""
    k, _, n = shard.partition("/")
    return f"{sep}{k}{sep}of{sep}{n}"


#: The base commit a terraform run compares with (the PR's base, or the push's previous head).
TERRAFORM_BASE = "github.event_name == 'pull_request' && github.event.pull_request.base.sha || github.event.before"


def _terraform_layers(envs: list[dict[str, Any]]) -> dict[str, Any]:
    """The terraform workflow's layered jobs: plans per layer (org -> shared -> pool ->
    tenant), applies per environment and layer in promotion order, each job a batched matrix
    read at run time (``companyos batches``), so the workflow's shape never depends on the
    fleet. The tenant layer runs as :data:`TENANT_SHARDS` jobs side by side; each job of a
    step needs every job of the step before (``needs``)."""
    env_layers = [layer for layer in TERRAFORM_LAYERS if layer != "org"]
    plans = [_batched_jobs("plan", layer, None) for layer in TERRAFORM_LAYERS]
    stages = [_batched_jobs("apply", "org", None)]
    stages += [_batched_jobs("apply", layer, env) for env in envs for layer in env_layers]
    return {
        "tf_plan_steps": plans,
        "tf_max_jobs": MAX_JOBS,
        "lint_units_per_job": LINT_UNITS_PER_JOB,
        "tf_base": TERRAFORM_BASE,
        "tf_apply_steps": stages,
        "tf_apply_parallel": APPLY_PARALLEL,
        "drift_shards": [
            {"job": f"drift{shard_suffix(s)}", "output": f"matrix{shard_suffix(s, '_')}", "shard": s}
            for s in (f"{k}/{DRIFT_SHARDS}" for k in range(1, DRIFT_SHARDS + 1))
        ],
        "drift_parallel": DRIFT_PARALLEL,
    }


def _batched_jobs(mode: str, layer: str, env: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The jobs of one step of the terraform workflow: ``mode`` (plan or apply) of ``layer``
    (in ``env``, for applies), one job per shard (:func:`layer_shards`), each with its job id,
    its matrix output and the batch script's command line."""
    where = f"{env['name']}-" if env is not None else ""
    jobs = []
    for s in layer_shards(layer):
        output = f"{mode}_{layer}" if mode == "plan" or env is None else f"{env['name']}_{layer}"
        args = [mode, layer, '"$BATCH"', *([shell_word(env["name"])] if env is not None else (["''"] if s else [])), *([s] if s else [])]
        jobs.append(
            {
                "job": f"{mode}-{where}{layer}{shard_suffix(s)}",
                "label": (f"{env['name']} " if env is not None else "") + layer + (f" {s}" if s else ""),
                "output": output + shard_suffix(s, "_"),
                "layer": layer,
                "env": env,
                "run": f"bash {BATCH_SCRIPT} {' '.join(args)}",
            }
        )
    return jobs


def _chunks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Static matrix rows split into jobs of at most MAX_MATRIX rows."""
    parts = [rows[i : i + MAX_MATRIX] for i in range(0, len(rows), MAX_MATRIX)]
    if len(parts) <= 1:
        return [{"job": "", "rows": rows}]
    return [{"job": f"-{k}", "rows": part} for k, part in enumerate(parts, start=1)]


def shards(count: int) -> list[dict[str, Any]]:
    """How to split a matrix of up to ``count`` rows into jobs GitHub accepts: one job
    (no suffix, no ``--shard``) for small catalogs, else ``-k`` jobs reading ``--shard k/N``."""
    n = max(1, -(-count // MAX_MATRIX))
    if n == 1:
        return [{"job": "", "out": "", "arg": ""}]
    return [{"job": f"-{k}", "out": f"_{k}", "arg": f" --shard {k}/{n}"} for k in range(1, n + 1)]


def _environment(model: Model, env: Any) -> dict[str, Any]:
    shared = env.accounts.shared_services
    # Upper bound on the environment's Terraform roots: shared, one per pool, one per tenant.
    max_roots = 1 + len(env.accounts.pools) + len(model.in_environment(env.name))
    return {
        "max_roots": max_roots,
        "shards": shards(max_roots),
        "name": env.name,
        "region": env.aws.region,
        "cluster": naming.cluster_name(model.platform, env.name),
        "deploy_role": naming.ci_role_arn(shared, model.platform, "deploy"),
        "requires_approval": env.promotion.requires_approval,
        "reviewers": env.promotion.reviewers,
        "change_window": env.change_window,
        "previews": env.previews,
        "dr_region": env.aws.dr_region,
        "dr_verify_role": naming.ci_role_arn(env.accounts.dr_verify, model.platform, "restore-drill"),
        # the dr-verify vault every AWS Backup copy lands in, and the role AWS Backup restores with there
        "verify_vault": hardening.verify_vault(model.platform, env.name),
        "backup_restore_role": f"arn:aws:iam::{env.accounts.dr_verify}:role/{model.platform.organization}-backup-restore",
        # the restore drill's network and verifier there (the shared root's dr.tf)
        "restore_drill": hardening.restore_drill(model.platform, env.name, env.aws.dr_region, env.accounts.dr_verify),
        "rto_minutes": env.rto_minutes,
        "rpo_minutes": env.rpo_minutes,
    }


def _standby(model: Model, env: spec.Environment, row: dict[str, Any]) -> dict[str, Any]:
    """An environment with ``disaster_recovery``: its region drill and FIS chaos (issue 15)."""
    dr = env.disaster_recovery
    assert dr is not None
    shared = env.accounts.shared_services
    return {
        **row,
        "drill_schedule": dr.region_drill_schedule,
        "chaos_schedule": dr.chaos_schedule,
        "drill_document": hardening.region_drill_document(model.platform, env.name),
        "drill_role": naming.ci_role_arn(shared, model.platform, "region-drill"),
        "fis_role": naming.ci_role_arn(shared, model.platform, "chaos"),
        "fis_templates": hardening.fis_template_names(model.platform, env.name),
    }


def _chaos(model: Model, env: spec.Environment, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` is ``env``'s entry of the context's ``environments``."""
    return {
        **row,
        "chaos_role": naming.ci_role_arn(env.accounts.shared_services, model.platform, "chaos"),
        "namespaces": sorted({d.namespace for d in model.in_environment(env.name)}),
    }


def _postgres_tag(model: Model, service: str) -> str:
    """The newest engine version any deployment of ``service`` runs (CI tests against it)."""
    versions = {d.settings.database.engine_version for d in model.deployments if any(s.name == service for s in d.services)}
    if not versions:
        return "16"
    return max(versions, key=lambda v: tuple(int(p) if p.isdigit() else 0 for p in v.split(".")))


def _ecr(repository: str) -> dict[str, str] | None:
    """Account, region and host of an ECR repository URL; None for other registries."""
    host = repository.split("/", 1)[0]
    parts = host.split(".")
    if len(parts) == 6 and parts[1:3] == ["dkr", "ecr"] and parts[4:] == ["amazonaws", "com"] and parts[0].isdigit():
        return {"host": host, "account": parts[0], "region": parts[3]}
    return None


def _migrations(model: Model) -> list[dict[str, Any]]:
    out = []
    for name, svc in model.services.items():
        m = svc.migrations
        if m is None:
            continue
        ecr = _ecr(svc.image.repository)
        out.append(
            {
                "name": name,
                "path": m.path.strip("/"),
                "image": f"{svc.image.repository}:{svc.image.tag}",
                "plan": shell_join([*m.command, *m.plan_args]),
                "dry_run": shell_join([*m.command, *m.dry_run_args]),
                "postgres": f"{POSTGRES_IMAGE}:{_postgres_tag(model, name)}",
                "ecr": ecr,
                "ecr_role": naming.ci_role_arn(ecr["account"], model.platform, "ecr-read") if ecr else None,
            }
        )
    return out


def _preview(model: Model, envs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Previews run in the first environment of the promotion chain (dev) when it enables them."""
    first = model.environments[0]
    if first.previews is None or not first.previews.enabled:
        return None
    services = []
    for name, svc in model.services.items():
        chart = model.platform.charts[svc.chart]
        services.append(
            {"name": name, "service": svc, "chart": chart, "release": name, "values_file": preview_values_path(name, first.name)}
        )
    return {
        "env": first.name,
        "ttl_hours": first.previews.ttl_hours,
        "services": services,
        "target": envs[0],
        # What the comment at the top of the workflow shows, and the namespace a PR's preview runs in.
        "values_pattern": preview_values_path("<service>", first.name),
        "namespace_pattern": naming.preview_namespace("<number>"),
        "namespace": naming.preview_namespace(gh("github.event.pull_request.number")),
        # The namespace label the sweeper reads: when (epoch seconds) the preview expires.
        "expires_label": PREVIEW_EXPIRES_LABEL,
        "idle": _preview_idle(model, first, sorted(model.services)),
    }


def _preview_idle(model: Model, env: spec.Environment, services: list[str]) -> dict[str, Any] | None:
    """KEDA cron ScaledObjects (no namespace: applied into each preview's) keeping every
    preview service at one replica in ``awake_hours`` and at zero outside them."""
    assert env.previews is not None
    hours = env.previews.awake_hours
    if hours is None or not hardening.has_addon(model, env.name, hardening.KEDA_ADDON):
        return None
    documents = [
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": f"{name}-idle", "labels": {"companyos.io/preview": "true"}},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": naming.workload_name(name)},
                "minReplicaCount": 0,
                "maxReplicaCount": 1,
                "triggers": [
                    {
                        "type": "cron",
                        "metadata": {"timezone": hours.timezone, "start": hours.start, "end": hours.end, "desiredReplicas": "1"},
                    }
                ],
            },
        }
        for name in sorted(services)
    ]
    return {"path": f"rendered/previews/{env.name}/idle-scaling.yaml", "hours": hours, "documents": documents}


def restore_targets(model: Model) -> list[dict[str, Any]]:
    """The restore drill's databases; the workflow asks ``companyos restore-targets`` for them
    at run time (ops/fleet.py), so onboarding a tenant does not rewrite it."""
    return _restore_targets(model)


def _restore_targets(model: Model) -> list[dict[str, Any]]:
    """Every database of the last environment (prod): each dedicated tenant's instance
    and each pool's shared one, named as the terraform target names them."""
    last = model.environments[-1]
    out: dict[str, dict[str, Any]] = {}
    for d in model.in_environment(last.name):
        if not any(s.uses_database for s in d.services) or d.account_pending:  # held: id not recorded yet
            continue
        owner = d.name if d.dedicated else naming.pool_root(d.tier.name)
        out.setdefault(
            owner,
            {
                "owner": owner,
                "environment": last.name,
                "db_instance": naming.resource_prefix(model.platform, last.name, owner),
                "source_account": d.account_id,
                #: Where the copy lives: the DR region when backups are copied across regions.
                "region": last.aws.dr_region if d.settings.database.cross_region_copy else last.aws.region,
            },
        )
    return [out[k] for k in sorted(out)]
