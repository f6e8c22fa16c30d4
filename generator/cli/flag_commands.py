"""``flag``: switch a service's feature flag for an environment or one tenant (catalog + re-render)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from generator.cli.common import FormatOption, RootOption

if TYPE_CHECKING:
    from generator.ops.flags import FlagChange


def flag(
    service: Annotated[str, typer.Argument(help="Service from catalog/services/.")],
    name: Annotated[str, typer.Argument(metavar="FLAG", help="Flag declared in the service's flags settings.")],
    env: Annotated[str, typer.Option("--env", help="Environment whose layer (or whose tenant override) changes.")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant (its override for --env).")] = None,
    variant: Annotated[str | None, typer.Option("--set", help="Variant to serve (re-enables a killed flag).")] = None,
    kill: Annotated[
        bool, typer.Option("--kill", help="Disable the flag: flagd answers FLAG_DISABLED, the code's default is used.")
    ] = False,
    branch: Annotated[str | None, typer.Option("--branch", help="Commit the change on this new branch (checked out).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would change; write nothing.")] = False,
    allow_dirty: Annotated[bool, typer.Option("--allow-dirty", help="Commit over uncommitted changes elsewhere.")] = False,
    output: FormatOption = "text",
    root: RootOption = None,
) -> None:
    """Set (--set VARIANT) or kill (--kill) FLAG of SERVICE in --env, for every tenant or one (--tenant); re-renders atomically."""
    from pathlib import Path

    from generator.catalog.load import find_root
    from generator.lifecycle import flags as lib
    from generator.ops import flags as plan_lib

    if dry_run:
        planned = plan_lib.plan(find_root(root or Path.cwd()), service, name, env, tenant=tenant, variant=variant, kill=kill)
        if output == "json":
            typer.echo(json.dumps(planned.as_json(), sort_keys=True))
        else:
            typer.echo(f"would set {_what(planned)} in {planned.path} (tenants: {', '.join(planned.affected) or 'none change'})")
        return
    result = lib.switch(root, service, name, env, tenant=tenant, variant=variant, kill=kill, branch=branch, allow_dirty=allow_dirty)
    c = result.change
    if output == "json":
        typer.echo(json.dumps({**c.as_json(), "files": result.files, "branch": result.branch, "commit": result.commit}, sort_keys=True))
        return
    if c.unchanged:
        typer.echo(f"{c.path} already sets {_what(c)}; nothing to do")
        return
    typer.echo(f"set {_what(c)} in {c.path} (tenants: {', '.join(c.affected) or 'none change'}); {len(result.files)} files changed")
    if result.commit:
        typer.echo(f"committed as {result.commit[:12]} on branch {result.branch} (now checked out)")


def _what(c: FlagChange) -> str:
    return ", ".join(f"{c.service}.flags.{c.flag}.{k}={v}" for k, v in c.values.items())
