"""The ``companyos`` command table and entry point.

Every command is a plain function in a ``*_commands`` module; this table registers them
(like pre-commit's ``commands/``), and :func:`main` maps outcomes to exit codes: 0 ok,
1 differences, 2 a user mistake, 3 the file system refused, 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import typer

from generator.cli import (
    catalog_commands,
    ops_commands,
    policy_commands,
    tenant_commands,
    tree_commands,
)
from generator.cli.common import EXIT_FILE_SYSTEM, EXIT_USER_ERROR, report
from generator.errors import CatalogErrors, UsageError

app = typer.Typer(
    name="companyos",
    help="Render the platform catalog into Terraform, Argo CD, Helm values, migration Jobs and workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(help="Policy rules over the resolved catalog (guardrails as code).", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

COMMANDS: tuple[tuple[typer.Typer, str | None, Callable[..., Any]], ...] = (
    (app, None, tree_commands.render),
    (app, None, tree_commands.check),
    (app, None, tree_commands.diff),
    (app, None, catalog_commands.explain),
    (app, None, catalog_commands.validate),
    (app, None, catalog_commands.schema),
    (app, None, catalog_commands.allocate),
    (app, None, ops_commands.affected),
    (app, None, ops_commands.roots),
    (app, None, ops_commands.window_open),
    (app, None, ops_commands.smoke),
    (app, None, ops_commands.cost),
    (app, None, ops_commands.lint),
    (policy_app, "list", policy_commands.policy_list),
    (app, None, tenant_commands.new_tenant),
    (app, None, tenant_commands.update_tenants),
    (app, None, tenant_commands.remove_tenant),
)
for _typer, _name, _command in COMMANDS:
    _typer.command(_name)(_command)


def main() -> None:
    """Entry point: run the app, turning user mistakes into exit code 2 without a traceback."""
    try:
        # With standalone_mode off, click returns the code of a typer.Exit instead of exiting.
        code = app(standalone_mode=False)
        if code == 130:  # typer turns Ctrl-C into a silent exit 130
            typer.echo("companyos: interrupted", err=True)
        if isinstance(code, int) and code:
            sys.exit(code)
    except CatalogErrors as errors:
        report(errors)
        sys.exit(EXIT_USER_ERROR)
    except UsageError as exc:
        typer.echo(f"companyos: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("companyos: interrupted; nothing was written", err=True)
        sys.exit(130)
    except OSError as exc:
        # Disk full, permission denied, a file that appeared mid-write: not a catalog
        # mistake and not a bug. Writers roll back, so say what failed, not how.
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"companyos: {where}{exc.strerror or exc}", err=True)
        sys.exit(EXIT_FILE_SYSTEM)
    except Exception as exc:
        # Usage errors from the (vendored) click parser: bad option, missing argument.
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(EXIT_USER_ERROR)
        raise
