"""The ``companyos`` command table and entry point.

Every command is a plain function in a ``*_commands`` module; this table registers them
(like pre-commit's ``commands/``), and :func:`main` maps outcomes to exit codes: 0 ok,
1 differences, 2 a user mistake, 3 the file system refused, 130 interrupted.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
from collections.abc import Callable
from importlib import metadata
from types import FrameType
from typing import Annotated, Any

import typer

from generator import git
from generator.cli import (
    catalog_commands,
    fast_exit,
    flag_commands,
    fleet_commands,
    ops_commands,
    policy_commands,
    release_commands,
    standby_commands,
    tenant_commands,
    tree_commands,
)
from generator.cli.common import EXIT_FILE_SYSTEM, EXIT_INTERRUPTED, EXIT_USER_ERROR, report
from generator.errors import CatalogErrors, UsageError

app = typer.Typer(
    name="companyos",
    help="Render the platform catalog into Terraform, Argo CD, Helm values, migration Jobs and workflows.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"companyos {metadata.version('companyos')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Render the platform catalog into Terraform, Argo CD, Helm values, migration Jobs and workflows."""


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
    (app, "record-pod-groups", catalog_commands.record_pod_groups),
    (app, "record-accounts", catalog_commands.record_accounts),
    (app, None, ops_commands.affected),
    (app, None, ops_commands.roots),
    (app, None, ops_commands.window_open),
    (app, None, ops_commands.smoke),
    (app, None, ops_commands.cost),
    (app, None, ops_commands.lint),
    (app, None, ops_commands.isolation),
    (policy_app, "list", policy_commands.policy_list),
    (app, None, tenant_commands.new_tenant),
    (app, None, tenant_commands.update_tenants),
    (app, None, tenant_commands.remove_tenant),
    (app, None, release_commands.promote),
    (app, None, flag_commands.flag),
    (app, "move-tenant", fleet_commands.move_tenant),
    (app, "list-tenants", fleet_commands.list_tenants),
    (app, None, fleet_commands.batches),
    (app, "restore-targets", fleet_commands.restore_targets),
    (app, None, standby_commands.standby),
)
for _typer, _name, _command in COMMANDS:
    _typer.command(_name)(_command)


def entry() -> None:
    """The console script: :func:`main` with the cyclic garbage collector off for the whole
    process. A command is one short-lived process whose data is acyclic: at 1000 tenants x 3
    the collector freed 149 objects in a cold render and cost 1.6 s of it, and 1.9 s of a
    6.2 s one-tenant edit (full collections over millions of live objects; docs/benchmark.md).
    Reference counting still frees everything else, and the process ends without freeing its
    heap (``fast_exit``). Forked workers turn it back on (``output.parallel``: a render's
    templates leave cycles). Tests call :func:`main` in-process."""
    gc.disable()
    fast_exit.enable()
    try:
        main()
    except SystemExit as exc:
        fast_exit.leave(exc.code)
    fast_exit.leave(0)


def main() -> None:
    """Entry point: run the app and map every outcome to an exit code, without a traceback
    for anything but a bug. A Ctrl-C anywhere -- while a command runs or while an error is
    being printed -- is one line and exit 130."""
    previous = _terminate_as_interrupt()
    try:
        code = _run()
    except KeyboardInterrupt:
        code = _say("companyos: interrupted; nothing was written", EXIT_INTERRUPTED)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if code:
        sys.exit(code)


def _terminate_as_interrupt() -> signal.Handlers | Callable[[int, FrameType | None], Any] | int | None:
    """SIGTERM (a cancelled CI job, ``timeout``, ``kill``) stops a command the way Ctrl-C
    does -- roll-back, one line, exit 130 -- instead of killing it mid-write. Returns the
    handler to put back (None outside the main thread, where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def _run() -> int:
    try:
        # With standalone_mode off, click returns the code of a typer.Exit instead of exiting.
        code = app(standalone_mode=False)
        if code == EXIT_INTERRUPTED:  # typer turns Ctrl-C into a silent exit 130
            typer.echo("companyos: interrupted", err=True)
        return code if isinstance(code, int) else 0
    except CatalogErrors as errors:
        report(errors)
        return EXIT_USER_ERROR
    except UsageError as exc:
        return _say(f"companyos: {exc}", EXIT_USER_ERROR)
    except tenant_commands.Interrupted as exc:
        return _say(f"companyos: {exc}", EXIT_INTERRUPTED)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return _say("companyos: interrupted; nothing was written", EXIT_INTERRUPTED)
    except OSError as exc:
        # Disk full, permission denied, a file that appeared mid-write: not a catalog
        # mistake and not a bug. Writers roll back, so say what failed (and where), not how.
        return _say(f"companyos: {describe_os_error(exc)}", EXIT_FILE_SYSTEM)
    except Exception as exc:
        if git.is_git_error(exc):  # a git command failed (lock file, corrupt object, no git)
            return _say(f"companyos: git failed: {git.git_error_detail(exc)}; nothing was written", EXIT_USER_ERROR)
        # Usage errors from the (vendored) click parser: bad option, missing argument.
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            return EXIT_USER_ERROR
        raise


def describe_os_error(exc: OSError) -> str:
    """``path: reason`` (``source -> target: reason`` for a rename or link)."""
    reason = exc.strerror or str(exc)
    if exc.filename is not None and exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {reason}"
    if exc.filename is not None:
        return f"{exc.filename}: {reason}"
    return reason


def _say(line: str, code: int) -> int:
    """Print one line on stderr; a Ctrl-C while printing it changes nothing."""
    try:  # noqa: SIM105 - plain try: contextlib.suppress would widen the window for a Ctrl-C
        typer.echo(line, err=True)
    except (KeyboardInterrupt, OSError):
        pass
    return code
