"""What every command module shares: options, exit codes, error printing, the model.

The CLI is thin on purpose: parse flags, call the library, map outcomes to exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from generator.catalog.folders import find_root
from generator.errors import CatalogErrors

if TYPE_CHECKING:  # the commands load the pipeline when they run: the CLI starts without it (a no-op render never needs it)
    from generator.model.resolve import Model
    from generator.policy.core import PolicyReport

RootOption = Annotated[Path | None, typer.Option("--root", help="Repository root (default: found from the current folder).")]
FormatOption = Annotated[str, typer.Option("--format", help="text or json.")]

EXIT_DIFFERENT = 1
EXIT_USER_ERROR = 2
EXIT_FILE_SYSTEM = 3
EXIT_INTERRUPTED = 130


def report(errors: CatalogErrors) -> None:
    """Every catalog error on its own `path:line:col: message` line, then a count."""
    for error in errors.errors:
        typer.echo(str(error), err=True)
    count = len(errors.errors)
    typer.echo(f"companyos: {count} error{'s' if count != 1 else ''}; nothing was written.", err=True)
    if errors.root_cause_count and count > errors.root_cause_count:
        first = "the first error" if errors.root_cause_count == 1 else f"the first {errors.root_cause_count} errors"
        typer.echo(f"companyos: fix {first} above (the root cause); the others follow from it.", err=True)


def model_for(root: Path | None) -> tuple[Path, Model]:
    """(repository root, resolved and judged model) for ``--root`` or the current folder;
    waived violations are printed as notes."""
    from generator import pipeline

    folder = find_root(root or Path.cwd())
    judged = pipeline.resolve_checked(folder)
    return folder, judged.model


def echo_waived(policy: PolicyReport) -> None:
    """Violations that a valid waiver covers: a note on stdout, never an error."""
    for waived in policy.waived:
        typer.echo(str(waived))
