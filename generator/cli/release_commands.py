"""``promote``: move a service's release (digest) one environment along the promotion chain."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from generator.cli.common import FormatOption, RootOption


def promote(
    service: Annotated[str, typer.Argument(help="Service from catalog/services/.")],
    to: Annotated[str, typer.Option("--to", help="Environment to promote to (from its promotion.after).")],
    from_env: Annotated[
        str | None, typer.Option("--from", help="Environment promoted from; refused unless it is --to's promotion.after.")
    ] = None,
    digest: Annotated[str | None, typer.Option("--digest", help="First environment only: the digest the release workflow pushed.")] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="First environment only: the tag it was built as.")] = None,
    branch: Annotated[str | None, typer.Option("--branch", help="Commit the change on this new branch (checked out).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would change; write nothing.")] = False,
    allow_dirty: Annotated[bool, typer.Option("--allow-dirty", help="Commit over uncommitted changes elsewhere.")] = False,
    output: FormatOption = "text",
    root: RootOption = None,
) -> None:
    """Copy the previous environment's release of SERVICE into --to (catalog + re-render), refusing skips and closed windows."""
    from pathlib import Path

    from generator.catalog.folders import find_root
    from generator.lifecycle import promote as lib
    from generator.ops import promote as plan_lib

    if dry_run:
        planned = plan_lib.plan(find_root(root or Path.cwd()), service, to, from_env=from_env, digest=digest, tag=tag)
        if output == "json":
            typer.echo(json.dumps(planned.as_json(), sort_keys=True))
        else:
            typer.echo(
                f"would set {planned.path} image.releases.{to} = {planned.tag}@{planned.digest} (from {planned.source_env or 'the build'})"
            )
        return
    result = lib.promote(root, service, to, from_env=from_env, digest=digest, tag=tag, branch=branch, allow_dirty=allow_dirty)
    p = result.promotion
    if output == "json":
        typer.echo(json.dumps({**p.as_json(), "files": result.files, "branch": result.branch, "commit": result.commit}, sort_keys=True))
        return
    if p.unchanged:
        typer.echo(f"{to} already runs {service} {p.tag}@{p.digest}; nothing to do")
        return
    typer.echo(
        f"promoted  {service} {p.tag}@{p.digest} to {to} (from {p.source_env or 'the release workflow'}); {len(result.files)} files changed"
    )
    if result.commit:
        typer.echo(f"committed as {result.commit[:12]} on branch {result.branch} (now checked out)")
