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
from generator.model.resolve import Model
from generator.targets import common as hardening
from generator.targets.base import RenderedFile

NAME = "workflows"
TEMPLATE_DIR = "workflows"
MACROS = f"{TEMPLATE_DIR}/_steps.j2"
PREVIEW_TEMPLATE = f"{TEMPLATE_DIR}/preview-values.yaml.j2"

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
    Workflow("render-check", ("platform",)),
    Workflow("terraform", ("platform", "environment")),
    Workflow("drift", ("platform",)),
    Workflow("migrations", ("platform", "service"), when="migrations"),
    Workflow("deploy", ("platform", "environment", "service")),
    Workflow("previews", ("platform", "environment", "service"), when="preview"),
    Workflow("restore-drill", ("platform", "environment", "tenant")),
    Workflow("chaos-drill", ("platform", "environment", "tenant")),
)


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
        )
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
            self._check(value, entry.locate(*keypath))
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str):
                    self._check(key, entry.locate(*keypath, key, key=True))
                self._walk(entry, item, (*keypath, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self._walk(entry, item, (*keypath, i))

    def _check(self, value: str, where: Location) -> None:
        if "${{" in value:
            self.errors.append(
                CatalogError(where, "'${{' is not allowed here: GitHub Actions would evaluate it inside a generated workflow")
            )


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
    total_roots = sum(e["max_roots"] for e in envs)
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
        "all_shards": shards(total_roots),
        "restore_chunks": _chunks(_restore_targets(model)),
        "chaos": [_chaos(model, env, row) for env, row in zip(model.environments, envs, strict=True) if env.name in ci.chaos_environments],
    }
    if guard.errors:
        raise CatalogErrors(guard.errors)
    return ctx


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
        "rto_minutes": env.rto_minutes,
        "rpo_minutes": env.rpo_minutes,
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
    }


def _restore_targets(model: Model) -> list[dict[str, Any]]:
    """Every database of the last environment (prod): each dedicated tenant's instance
    and each pool's shared one, named as the terraform target names them."""
    last = model.environments[-1]
    out: dict[str, dict[str, Any]] = {}
    for d in model.in_environment(last.name):
        if not any(s.uses_database for s in d.services):
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
