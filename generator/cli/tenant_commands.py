"""``new-tenant``, ``update-tenants``, ``remove-tenant``: the tenant lifecycle (``generator.lifecycle``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from generator.cli.common import EXIT_DIFFERENT, EXIT_USER_ERROR, RootOption

if TYPE_CHECKING:
    from generator.lifecycle.transaction import Progress


class Interrupted(Exception):
    """A lifecycle command stopped by Ctrl-C (or SIGTERM); the message says what is true now.

    Not a KeyboardInterrupt: typer would turn that into a bare exit 130 and lose the message;
    the entry point prints this one line and exits 130."""


class _rolled_back_on_interrupt:
    """Turn Ctrl-C into :class:`Interrupted` with the command's own account of what it left:
    nothing (every file restored, no branch), the written change, or the finished commit."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> Literal[False]:
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted(self.progress.interrupted()) from None
        return False


def new_tenant(
    name: Annotated[str, typer.Argument(help="Tenant name: 2-20 lowercase letters, digits and '-'.")],
    tier: Annotated[str | None, typer.Option("--tier", help="Tier from catalog/tiers/.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Owning team's e-mail address.")] = None,
    cost_center: Annotated[str | None, typer.Option("--cost-center", help="Cost center, e.g. CC-2001.")] = None,
    environments: Annotated[
        list[str] | None, typer.Option("--environments", help="Comma-separated or repeated (default: all, in promotion order).")
    ] = None,
    services: Annotated[list[str] | None, typer.Option("--services", help="Comma-separated or repeated (default: all).")] = None,
    canary: Annotated[bool | None, typer.Option("--canary/--no-canary", help="Receive changes in the first progressive-sync wave.")] = None,
    account: Annotated[list[str] | None, typer.Option("--account", help="ENV=ACCOUNT_ID, once per environment (dedicated tiers).")] = None,
    no_input: Annotated[bool, typer.Option("--no-input", help="Never prompt; missing required values are errors.")] = False,
    no_commit: Annotated[bool, typer.Option("--no-commit", help="Write the files only: no branch, no commit.")] = False,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Run over uncommitted changes in the catalog and rendered tree.")
    ] = False,
    root: RootOption = None,
) -> None:
    """Scaffold tenants/NAME.yaml from templates/tenant/, allocate, render, and commit it on branch tenant/NAME."""
    from generator.lifecycle import new_tenant as lib
    from generator.lifecycle.request import TenantRequest, parse_accounts, split_list
    from generator.lifecycle.transaction import Progress

    request = TenantRequest(
        name=name,
        tier=tier,
        owner=owner,
        cost_center=cost_center,
        environments=split_list(environments),
        services=split_list(services),
        canary=canary,
        accounts=parse_accounts(account or []),
    )
    interactive = not no_input and sys.stdin.isatty() and sys.stdout.isatty()
    progress = Progress()
    with _rolled_back_on_interrupt(progress):
        result = lib.new_tenant(root, request, interactive=interactive, commit=not no_commit, allow_dirty=allow_dirty, progress=progress)
    for rel in result.created:
        typer.echo(f"created   {rel}")
    for line in result.allocations:
        typer.echo(f"allocated {line}")
    for line in result.vended:
        typer.echo(f"vends     {line} (created when rendered/terraform/org applies)")
    typer.echo(
        f"rendered  {len(result.tenant_outputs)} files for tenant '{result.name}' "
        f"({len(result.report.written)} written, {len(result.report.pruned)} pruned in total)"
    )
    if result.commit:
        typer.echo(f"committed {len(result.files)} files as {result.commit[:12]} on branch {result.branch} (now checked out)")
        typer.echo(f"next: git push -u origin {result.branch}, then open a pull request (e.g. gh pr create --fill)")
    else:
        typer.echo("next: review `git status`, commit the files above on a branch and open a pull request")


def update_tenants(
    tenant: Annotated[list[str] | None, typer.Option("--tenant", help="Only these tenants (repeatable; default: all).")] = None,
    root: RootOption = None,
) -> None:
    """Merge changes of templates/tenant/ into existing tenant files (three-way; keeps hand edits)."""
    from generator.lifecycle import update_tenants as lib
    from generator.lifecycle.transaction import Progress

    progress = Progress()
    with _rolled_back_on_interrupt(progress):
        result = lib.update_tenants(root, tenant or (), progress=progress)
    for item in result.tenants:
        typer.echo(f"{item.status:<10} {item.name}" + (f": {item.detail}" if item.detail else ""), err=item.status in {"conflict", "error"})
    if result.report is not None:
        typer.echo(f"rendered: {len(result.report.written)} written, {len(result.report.pruned)} pruned")
    if result.conflicts or result.errors:
        typer.echo(f"companyos: {len(result.conflicts)} tenant(s) with conflicts, {len(result.errors)} not updated", err=True)
        raise typer.Exit(EXIT_DIFFERENT if not result.errors else EXIT_USER_ERROR)


def remove_tenant(
    name: str,
    acknowledge_data_retention: Annotated[
        bool, typer.Option("--acknowledge-data-retention", help="Required for dedicated (regulated) tenants.")
    ] = False,
    root: RootOption = None,
) -> None:
    """Remove a tenant from the catalog and re-render; prints the decommission checklist (destroys nothing)."""
    from generator.lifecycle import remove_tenant as lib
    from generator.lifecycle.transaction import Progress

    progress = Progress()
    with _rolled_back_on_interrupt(progress):
        result = lib.remove_tenant(root, name, acknowledge_data_retention=acknowledge_data_retention, progress=progress)
    for rel in result.removed:
        typer.echo(f"removed   {rel}")
    for line in result.released:
        typer.echo(f"network   {line}")
    for line in result.retired:
        typer.echo(f"account   {line} (kept, never closed by companyos: see the checklist)")
    typer.echo(f"pruned    {len(result.report.pruned)} generated files ({len(result.report.written)} rewritten)")
    typer.echo("\nNothing was destroyed. Decommission checklist:")
    typer.echo("\n".join(result.checklist))
    typer.echo("\nnext: commit on a branch (e.g. tenant/remove-" + name + ") and open a pull request")
