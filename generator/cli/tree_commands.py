"""``render``, ``check``, ``diff``: the rendered tree against the catalog."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from generator import pipeline
from generator.cli.common import EXIT_DIFFERENT, FormatOption, RootOption, echo_waived
from generator.errors import CatalogErrors
from generator.output import tree
from generator.output.render import MANIFEST_PATH


def render(root: RootOption = None, quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False) -> None:
    """Render the catalog into rendered/ and .github/workflows/ (atomic, prunes stale output)."""
    built, report = pipeline.render_to_disk(root)
    if not quiet:
        typer.echo(
            f"rendered {len(built.result.files)} files: {len(report.written)} written, "
            f"{report.unchanged} unchanged, {len(report.pruned)} pruned"
        )
        for rel in report.pruned:
            typer.echo(f"  pruned {rel}")
        for rel in report.unmanaged:
            typer.echo(f"  warning: {rel} is under rendered/ but was not generated; remove it", err=True)
        echo_waived(built.policy)


def check(
    root: RootOption = None,
    format: FormatOption = "text",
    base: Annotated[
        str | None, typer.Option("--base", help="Also compare with this git ref: destructive changes, forward-only schema versions.")
    ] = None,
    acknowledge_destruction: Annotated[
        bool,
        typer.Option(
            "--acknowledge-destruction", help="Accept that the change destroys what --base lists (CI: the allow-destruction PR label)."
        ),
    ] = False,
    full: Annotated[bool, typer.Option("--full", help="Always render and compare; skip the verified-clean cache.")] = False,
) -> None:
    """Exit 1 when the files on disk differ from what the catalog renders (or, with --base,
    when the change destroys something without --acknowledge-destruction)."""
    built, st = pipeline.check(root, use_cache=not full and base is None)
    destruction = None
    if base is not None:
        from generator.ops.destructive import check_base

        assert built is not None  # --base never takes the cached path
        destruction = check_base(built.model, built.result, base)
        if destruction.errors:
            raise CatalogErrors(destruction.errors)
    blocked = destruction is not None and destruction.destructive and not acknowledge_destruction
    if destruction is not None:
        for note in destruction.notes:
            typer.echo(f"note: {note}", err=True)
        if destruction.destructive and format != "json":
            typer.echo(destruction.message(), err=blocked)
            typer.echo(
                "companyos: re-run with --acknowledge-destruction (in CI: add the PR label 'allow-destruction') if this is intended"
                if blocked
                else "acknowledged (--acknowledge-destruction)",
                err=blocked,
            )
    if format == "json":
        data = st.as_dict()
        if destruction is not None:
            data.update(base=base, destroyed=destruction.items, acknowledged=acknowledge_destruction)
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        for label, items in (("changed", st.changed), ("missing", st.missing), ("stale", st.stale), ("unmanaged", st.unmanaged)):
            for rel in items:
                typer.echo(f"{label:<9} {rel}")
        if st.clean:
            typer.echo(f"ok: {st.unchanged} files match the catalog")
        else:
            # Short form: only edited files (missing/stale ones are listed above), no manifest.
            assert built is not None  # the cached path only ever reports a clean tree
            edited = [rel for rel in st.changed if rel != MANIFEST_PATH]
            diff = tree.unified_diff(built.result, built.root, edited, context=1)
            lines = diff.splitlines()
            typer.echo("\n".join(lines[:200]))
            if len(lines) > 200:
                typer.echo(f"... {len(lines) - 200} more diff lines; run `companyos diff`")
            typer.echo("rendered files are out of date: run `companyos render` and commit the result", err=True)
    if not st.clean or blocked:
        raise typer.Exit(EXIT_DIFFERENT)


def diff(root: RootOption = None) -> None:
    """Print the full unified diff between the tree on disk and a fresh render."""
    built, st = pipeline.check(root)
    assert built is not None
    sys.stdout.write(tree.unified_diff(built.result, built.root, [*st.changed, *st.missing, *st.stale]))
    if not st.clean:
        raise typer.Exit(EXIT_DIFFERENT)
