"""``flag``: switch a service's feature flag for an environment or one tenant (catalog + re-render)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from generator.cli.common import FormatOption, RootOption

if TYPE_CHECKING:
    from generator.ops.flags import FlagChange


#: The verb forms: ``flag set SERVICE FLAG VARIANT`` and ``flag kill SERVICE FLAG``.
VERBS = {"set": 3, "kill": 2}


def parse_words(words: list[str], variant: str | None, kill: bool) -> tuple[str, str, str | None, bool]:
    """(service, flag, variant, kill) from either form: ``SERVICE FLAG --set V | --kill`` or
    ``set SERVICE FLAG V`` / ``kill SERVICE FLAG``; UsageError for anything else."""
    from generator.errors import UsageError

    if len(words) == 2:
        return words[0], words[1], variant, kill
    verb = words[0] if words else ""
    if verb in VERBS and len(words) == VERBS[verb] + 1 and variant is None and not kill:
        return (words[1], words[2], words[3], False) if verb == "set" else (words[1], words[2], None, True)
    raise UsageError(
        "expected SERVICE FLAG with --set VARIANT or --kill, or `set SERVICE FLAG VARIANT`, or `kill SERVICE FLAG` "
        f"(got: {' '.join(words) or 'nothing'}); nothing was written"
    )


def flag(
    words: Annotated[
        list[str],
        typer.Argument(
            metavar="[set|kill] SERVICE FLAG [VARIANT]",
            help="SERVICE (catalog/services/) and FLAG (declared in its flags settings), with --set or --kill; "
            "or the verb forms `set SERVICE FLAG VARIANT` and `kill SERVICE FLAG`.",
            show_default=False,
        ),
    ],
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
    """Set (--set VARIANT, or `set`) or kill (--kill, or `kill`) FLAG of SERVICE in --env, for every tenant or one (--tenant); re-renders atomically."""
    from pathlib import Path

    from generator.catalog.folders import find_root
    from generator.lifecycle import flags as lib
    from generator.ops import flags as plan_lib

    service, name, variant, kill = parse_words(words, variant, kill)
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
