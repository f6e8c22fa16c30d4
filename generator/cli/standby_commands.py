"""``standby``: flip an environment, or one dedicated tenant of it, between its primary and its
DR region through the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from generator.cli.common import RootOption


def standby(
    environment: Annotated[str, typer.Argument(help="Environment with a disaster_recovery block.")],
    active: Annotated[
        bool, typer.Option("--active/--standby", help="--active: serve from the DR region (failover); --standby: back to the primary.")
    ],
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            help="Only this dedicated tenant (disaster_recovery.active_tenants); without it, the whole environment (disaster_recovery.active).",
        ),
    ] = None,
    root: RootOption = None,
) -> None:
    """Set disaster_recovery.active (or add/remove --tenant in active_tenants) in environments/ENV.yaml;
    run `companyos render` next and commit both."""
    from generator.catalog.folders import find_root
    from generator.ops.standby import set_active

    changed = set_active(find_root(root or Path.cwd()), environment, active, tenant)
    state = "active (failed over)" if active else "standing by"
    what = environment if tenant is None else f"{environment}/{tenant}"
    typer.echo(f"{what}: standby {state}" + ("" if changed else " (unchanged)"))
