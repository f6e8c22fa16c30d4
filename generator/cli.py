"""The ``companyos`` command. Thin on purpose: parse flags, call the library, map outcomes
to exit codes (0 ok, 1 check found differences, 2 user mistake). Everything it does can be
done from Python through ``generator.pipeline`` and friends."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from generator import pipeline, tree
from generator.errors import CatalogErrors, UsageError

app = typer.Typer(
    name="companyos",
    help="Render the platform catalog into Terraform, Argo CD, Helm values, migration Jobs and workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

RootOption = Annotated[Optional[Path], typer.Option("--root", help="Repository root (default: found from the current folder).")]
FormatOption = Annotated[str, typer.Option("--format", help="text or json.")]

EXIT_DIFFERENT = 1
EXIT_USER_ERROR = 2


def _fail(errors: CatalogErrors) -> None:
    for error in errors.errors:
        typer.echo(str(error), err=True)
    count = len(errors.errors)
    typer.echo(f"companyos: {count} error{'s' if count != 1 else ''}; nothing was written.", err=True)
    raise typer.Exit(EXIT_USER_ERROR)


@app.command()
def render(root: RootOption = None, quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False) -> None:
    """Render the catalog into rendered/ and .github/workflows/ (atomic, prunes stale output)."""
    built, report = pipeline.render_to_disk(root)
    if not quiet:
        typer.echo(f"rendered {len(built.result.files)} files: {len(report.written)} written, "
                   f"{report.unchanged} unchanged, {len(report.pruned)} pruned")
        for rel in report.pruned:
            typer.echo(f"  pruned {rel}")
        for rel in report.unmanaged:
            typer.echo(f"  warning: {rel} is under rendered/ but was not generated; remove it", err=True)


@app.command()
def check(root: RootOption = None, format: FormatOption = "text") -> None:
    """Exit 1 when the files on disk differ from what the catalog renders."""
    built, st = pipeline.check(root)
    if format == "json":
        typer.echo(json.dumps(st.as_dict(), indent=2, sort_keys=True))
    else:
        for label, items in (("changed", st.changed), ("missing", st.missing), ("stale", st.stale), ("unmanaged", st.unmanaged)):
            for rel in items:
                typer.echo(f"{label:<9} {rel}")
        if st.clean:
            typer.echo(f"ok: {st.unchanged} files match the catalog")
        else:
            diff = tree.unified_diff(built.result, built.root, st, context=1)
            lines = diff.splitlines()
            typer.echo("\n".join(lines[:200]))
            if len(lines) > 200:
                typer.echo(f"... {len(lines) - 200} more diff lines; run `companyos diff`")
            typer.echo("rendered files are out of date: run `companyos render` and commit the result", err=True)
    if not st.clean:
        raise typer.Exit(EXIT_DIFFERENT)


@app.command()
def diff(root: RootOption = None) -> None:
    """Print the full unified diff between the tree on disk and a fresh render."""
    built, st = pipeline.check(root)
    sys.stdout.write(tree.unified_diff(built.result, built.root, st))
    if not st.clean:
        raise typer.Exit(EXIT_DIFFERENT)


@app.command()
def explain(
    tenant: str,
    environment: str,
    key: Annotated[Optional[str], typer.Argument(help="Dotted settings key or prefix, e.g. database.instance_class")] = None,
    root: RootOption = None,
    format: FormatOption = "text",
) -> None:
    """Show resolved settings and the file:line that set each (and what it overrode)."""
    from generator.explain import explain as run, format_text
    from generator.load import find_root, load_catalog
    from generator.model import resolve

    model = resolve(load_catalog(find_root(root or Path.cwd())))
    items = run(model, tenant, environment, key)
    if format == "json":
        typer.echo(json.dumps([i.as_dict() for i in items], indent=2))
    else:
        typer.echo(format_text(items, tenant, environment, model.tenants[tenant].tier), nl=False)


@app.command()
def validate(root: RootOption = None) -> None:
    """Check the catalog (syntax, references, guardrails) without rendering."""
    from generator.load import find_root, load_catalog
    from generator.model import resolve

    model = resolve(load_catalog(find_root(root or Path.cwd())))
    typer.echo(f"ok: {len(model.tenants)} tenants, {len(model.environments)} environments, {len(model.deployments)} deployments")


@app.command()
def schema(
    out: Annotated[Optional[Path], typer.Option("--out", help="Write <kind>.schema.json files here (default: catalog/schemas).")] = None,
    root: RootOption = None,
    check_only: Annotated[bool, typer.Option("--check", help="Exit 1 if the files on disk are out of date.")] = False,
) -> None:
    """Export the JSON Schema of every input file kind (for editor autocompletion)."""
    from generator.load import find_root
    from generator.schemas import SCHEMA_DIR, json_schemas

    folder = out or find_root(root or Path.cwd()) / SCHEMA_DIR
    stale = []
    for name, text in json_schemas().items():
        path = folder / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not check_only:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        typer.echo(f"{'out of date' if check_only else 'wrote'} {path}")
    if check_only and stale:
        raise typer.Exit(EXIT_DIFFERENT)


def main() -> None:
    """Entry point: run the app, turning user mistakes into exit code 2 without a traceback."""
    try:
        app(standalone_mode=False)
    except CatalogErrors as errors:
        _fail_plain(errors)
    except UsageError as exc:
        typer.echo(f"companyos: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("companyos: interrupted; nothing was written", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(EXIT_USER_ERROR)
        raise


def _fail_plain(errors: CatalogErrors) -> None:
    try:
        _fail(errors)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
