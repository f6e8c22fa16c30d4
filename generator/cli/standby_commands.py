"""``standby``: flip an environment between its primary and its DR region through the catalog."""

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
    root: RootOption = None,
) -> None:
    """Set disaster_recovery.active in environments/ENV.yaml; run `companyos render` next and commit both."""
    from generator.catalog.load import find_root
    from generator.ops.standby import set_active

    changed = set_active(find_root(root or Path.cwd()), environment, active)
    state = "active (failed over)" if active else "standing by"
    typer.echo(f"{environment}: standby {state}" + ("" if changed else " (unchanged)"))
