"""``explain``, ``validate``, ``schema``, ``allocate``, ``record-pod-groups``: questions and upkeep of the catalog itself."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from generator.catalog.folders import find_root
from generator.cli.common import (
    EXIT_DIFFERENT,
    FormatOption,
    RootOption,
    echo_waived,
)
from generator.errors import CatalogError, CatalogErrors, Location, UsageError

if TYPE_CHECKING:
    from generator.model.explain import Explanation


def explain(
    subject: Annotated[
        str,
        typer.Argument(
            metavar="TENANT|RENDERED_PATH:LINE",
            help="A tenant, or a rendered file and line, e.g. rendered/terraform/prod/tenant-acme/main.tf:42",
        ),
    ],
    environment: Annotated[str | None, typer.Argument(help="Environment of the tenant (not with a rendered path).")] = None,
    key: Annotated[str | None, typer.Argument(help="Dotted settings key or prefix, e.g. database.instance_class")] = None,
    root: RootOption = None,
    format: FormatOption = "text",
    contracts: Annotated[
        bool, typer.Option("--contracts", help="List the deployment's contracts: each consumed one with its producer paths.")
    ] = False,
) -> None:
    """Show resolved settings and the file:line that set each, or which catalog lines made a rendered line.

    Works while a policy rule fails: violating values are marked with the rule (exit 0)."""
    from generator import pipeline
    from generator.model.explain import explain as run
    from generator.model.explain import format_text
    from generator.ops import trace

    folder = find_root(root or Path.cwd())
    if contracts:
        if environment is None or key is not None:
            raise UsageError("explain --contracts takes TENANT ENVIRONMENT")
        explain_contracts(folder, subject, environment, format)
        return
    spec = trace.parse_spec(subject)
    if spec is not None:
        if environment is not None:
            raise UsageError("explain RENDERED_PATH:LINE takes no environment or key")
        result = trace.trace_line(folder, *spec)
        typer.echo(json.dumps(result.as_dict(), indent=2) if format == "json" else trace.format_text(result), nl=format == "json")
        return
    if environment is None:
        raise UsageError("explain needs TENANT ENVIRONMENT [KEY], or RENDERED_PATH:LINE")
    model = pipeline.resolve_only(folder)
    items = run(model, subject, environment, key)
    items, unattached = attach_violations(items, pipeline.judge(model).errors, subject, environment)
    if format == "json":
        typer.echo(json.dumps([i.as_dict() for i in items], indent=2))
    else:
        typer.echo(format_text(items, subject, environment, model.tenants[subject].tier), nl=False)
        for error in unattached:
            typer.echo(f"policy: {error}")


def explain_contracts(folder: Path, tenant: str, environment: str, format: str) -> None:
    """Every contract a file of this deployment consumes or provides to a consumer, rendered in
    memory without the check (so a broken one is listed, not raised)."""
    from generator import pipeline
    from generator.output import contracts as checker
    from generator.output.render import render

    model = pipeline.resolve_checked(folder).model
    if not any(d.name == tenant and d.env == environment for d in model.deployments):
        raise UsageError(f"no deployment of tenant '{tenant}' in environment '{environment}'")
    result = render(model, check=False)
    files = result.manifest["files"]
    mine = {path for path, entry in files.items() if entry.get("tenant") == tenant and entry.get("environment") == environment}
    found = [link for link in checker.links(result.declared) if link.consumer in mine or mine.intersection(link.producers)]
    if format == "json":
        rows = [
            {
                "kind": link.contract.kind,
                "name": link.contract.name,
                "detail": link.contract.detail,
                "consumer": link.consumer,
                "producers": list(link.producers),
                "status": link.status,
                "message": link.message,
                "location": str(link.location),
            }
            for link in found
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    for link in found:
        producers = ", ".join(link.producers) or "(none)"
        typer.echo(f"{link.status:8} {link.contract.kind} {link.contract.name}: {link.consumer} <- {producers}")
        if link.status != "ok":
            note = "" if link.strict else " (listed, not enforced: output/contracts.STRICT)"
            typer.echo(f"         {link.location}: {link.message}{note}")


def attach_violations(
    items: list[Explanation], errors: list[CatalogError], tenant: str, environment: str
) -> tuple[list[Explanation], list[CatalogError]]:
    """Mark each explained value with the policy errors blamed on the line that set it."""
    by_location: dict[Location, list[str]] = {}
    for error in errors:
        by_location.setdefault(error.location, []).append(error.message)
    used: set[Location] = set()
    marked = []
    for item in items:
        where = item.origins[-1].location if item.origins else None
        # Rule messages name the deployment ("for tenant 'acme' in prod"); keep this one's.
        found = [m for m in by_location.get(where, []) if f"'{tenant}' in {environment}" in m or "tenant '" not in m] if where else []
        if found and where is not None:
            used.add(where)
            item = replace(item, problems=tuple(found))
        marked.append(item)
    return marked, [e for e in errors if e.location not in used and f"'{tenant}' in {environment}" in e.message]


def validate(
    root: RootOption = None,
    base: Annotated[str | None, typer.Option("--base", help="Also check forward-only schema versions against this git ref.")] = None,
) -> None:
    """Check the catalog (syntax, references, policy rules and waivers) and the contracts and
    consumer limits of its render, done in memory (nothing is written)."""
    from generator import pipeline

    folder = find_root(root or Path.cwd())
    built = pipeline.build(folder)
    judged = pipeline.Judged(built.model, built.policy)
    model = judged.model
    echo_waived(judged.policy)
    if base is not None:
        from generator.policy.rules.migrations import check_base

        errors = check_base(model, base)
        if errors:
            raise CatalogErrors(errors)
    typer.echo(f"ok: {len(model.tenants)} tenants, {len(model.environments)} environments, {len(model.deployments)} deployments")


def schema(
    out: Annotated[Path | None, typer.Option("--out", help="Write <kind>.schema.json files here (default: catalog/schemas).")] = None,
    root: RootOption = None,
    check_only: Annotated[bool, typer.Option("--check", help="Exit 1 if the files on disk are out of date.")] = False,
) -> None:
    """Export the JSON Schema of every input file kind (for editor autocompletion)."""
    from generator.catalog.folders import find_root
    from generator.catalog.json_schema import SCHEMA_DIR, json_schemas

    folder = out or find_root(root or Path.cwd()) / SCHEMA_DIR
    stale = []
    for name, text in json_schemas().items():
        path = folder / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not check_only:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        typer.echo(f"{'out of date' if check_only else 'wrote'} {path}")
    if check_only and stale:
        raise typer.Exit(EXIT_DIFFERENT)


def allocate(
    root: RootOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be allocated; write nothing.")] = False,
) -> None:
    """Record a VPC CIDR in catalog/networks.yaml for every VPC that lacks one."""
    from generator.catalog.folders import find_root
    from generator.ops.allocate import allocate as run
    from generator.ops.allocate import headroom

    where = find_root(root or Path.cwd())
    lines = run(where, write=not dry_run)
    for line in lines:
        typer.echo(line)
    if not lines:
        typer.echo("ok: every VPC has an allocation")
    if not dry_run:
        for line in headroom(where):
            typer.echo(line)


def record_pod_groups(
    environment: Annotated[str, typer.Argument(help="Environment whose shared root was applied.")],
    outputs: Annotated[
        Path | None, typer.Option("--outputs", help="`terraform output -json` of rendered/terraform/<env>/shared (default: stdin).")
    ] = None,
    root: RootOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be recorded; write nothing.")] = False,
) -> None:
    """Record the shared root's pod security group ids in catalog/networks.yaml (SecurityGroupPolicy needs ids)."""
    from generator.ops.pod_groups import record_pod_groups as run

    text = outputs.read_text(encoding="utf-8") if outputs else sys.stdin.read()
    lines = run(find_root(root or Path.cwd()), environment, text, write=not dry_run)
    for line in lines:
        typer.echo(line)
    if not lines:
        typer.echo(f"ok: every tenant of {environment} has its pod security group id recorded")


def record_accounts(
    outputs: Annotated[
        Path | None, typer.Option("--outputs", help="`terraform output -json` of rendered/terraform/org (default: stdin).")
    ] = None,
    root: RootOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be recorded; write nothing.")] = False,
) -> None:
    """Record the ids of the accounts the org root vended in the tenant files (vended_accounts)."""
    from generator.ops.accounts import record_accounts as run

    text = outputs.read_text(encoding="utf-8") if outputs else sys.stdin.read()
    lines = run(find_root(root or Path.cwd()), text, write=not dry_run)
    for line in lines:
        typer.echo(line)
    if not lines:
        typer.echo("ok: every vended account has its id recorded")
