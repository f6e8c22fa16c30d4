"""``explain``, ``validate``, ``schema``, ``allocate``: questions and upkeep of the catalog itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from generator import pipeline
from generator.catalog.load import find_root
from generator.cli.common import (
    EXIT_DIFFERENT,
    FormatOption,
    RootOption,
    echo_waived,
    model_for,
)
from generator.errors import CatalogErrors


def explain(
    tenant: str,
    environment: str,
    key: Annotated[str | None, typer.Argument(help="Dotted settings key or prefix, e.g. database.instance_class")] = None,
    root: RootOption = None,
    format: FormatOption = "text",
) -> None:
    """Show resolved settings and the file:line that set each (and what it overrode)."""
    from generator.model.explain import explain as run
    from generator.model.explain import format_text

    _, model = model_for(root)
    items = run(model, tenant, environment, key)
    if format == "json":
        typer.echo(json.dumps([i.as_dict() for i in items], indent=2))
    else:
        typer.echo(format_text(items, tenant, environment, model.tenants[tenant].tier), nl=False)


def validate(
    root: RootOption = None,
    base: Annotated[str | None, typer.Option("--base", help="Also check forward-only schema versions against this git ref.")] = None,
) -> None:
    """Check the catalog (syntax, references, policy rules and waivers) without rendering."""
    folder = find_root(root or Path.cwd())
    judged = pipeline.resolve_checked(folder)
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
    from generator.catalog.json_schema import SCHEMA_DIR, json_schemas
    from generator.catalog.load import find_root

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
    from generator.catalog.load import find_root
    from generator.ops.allocate import allocate as run

    lines = run(find_root(root or Path.cwd()), write=not dry_run)
    for line in lines:
        typer.echo(line)
    if not lines:
        typer.echo("ok: every VPC has an allocation")
