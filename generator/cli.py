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
from generator.cost import DEFAULT_MAX_INCREASE
from generator.errors import CatalogErrors, UsageError
from generator.render import MANIFEST_PATH

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
EXIT_FILE_SYSTEM = 3


def _report(errors: CatalogErrors) -> None:
    """Every catalog error on its own `path:line:col: message` line, then a count."""
    for error in errors.errors:
        typer.echo(str(error), err=True)
    count = len(errors.errors)
    typer.echo(f"companyos: {count} error{'s' if count != 1 else ''}; nothing was written.", err=True)


def _model(root: Optional[Path]):
    """(repository root, resolved model) for ``--root`` or the current folder."""
    from generator.load import find_root, load_catalog
    from generator.model import resolve

    folder = find_root(root or Path.cwd())
    return folder, resolve(load_catalog(folder))


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
        _echo_waived(built.model)


@app.command()
def check(
    root: RootOption = None,
    format: FormatOption = "text",
    base: Annotated[Optional[str], typer.Option("--base", help="Also compare with this git ref: destructive changes, forward-only schema versions.")] = None,
    acknowledge_destruction: Annotated[bool, typer.Option("--acknowledge-destruction", help="Accept that the change destroys what --base lists (CI: the allow-destruction PR label).")] = False,
    full: Annotated[bool, typer.Option("--full", help="Always render and compare; skip the verified-clean cache.")] = False,
) -> None:
    """Exit 1 when the files on disk differ from what the catalog renders (or, with --base,
    when the change destroys something without --acknowledge-destruction)."""
    built, st = pipeline.check(root, use_cache=not full and base is None)
    destruction = None
    if base is not None:
        from generator.destructive import check_base

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
            typer.echo("companyos: re-run with --acknowledge-destruction (in CI: add the PR label 'allow-destruction') if this is intended"
                       if blocked else "acknowledged (--acknowledge-destruction)", err=blocked)
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


@app.command()
def diff(root: RootOption = None) -> None:
    """Print the full unified diff between the tree on disk and a fresh render."""
    built, st = pipeline.check(root)
    assert built is not None
    sys.stdout.write(tree.unified_diff(built.result, built.root, [*st.changed, *st.missing, *st.stale]))
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

    _, model = _model(root)
    items = run(model, tenant, environment, key)
    if format == "json":
        typer.echo(json.dumps([i.as_dict() for i in items], indent=2))
    else:
        typer.echo(format_text(items, tenant, environment, model.tenants[tenant].tier), nl=False)


@app.command()
def validate(
    root: RootOption = None,
    base: Annotated[Optional[str], typer.Option("--base", help="Also check forward-only schema versions against this git ref.")] = None,
) -> None:
    """Check the catalog (syntax, references, policy rules and waivers) without rendering."""
    _, model = _model(root)
    _echo_waived(model)
    if base is not None:
        from generator.schema_versions import check_base

        errors = check_base(model, base)
        if errors:
            raise CatalogErrors(errors)
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


# --- CI and operations (issue 5): logic in generator.affected / changewindow / smoke ---


@app.command()
def affected(
    base: Annotated[str, typer.Option("--base", help="Git ref to compare with (branch, tag or commit).")],
    env: Annotated[Optional[str], typer.Option("--env", help="Only this environment (one apply stage).")] = None,
    shard: Annotated[Optional[str], typer.Option("--shard", help="K/N: only every N-th root, starting at the K-th.")] = None,
    root: RootOption = None,
    format: Annotated[str, typer.Option("--format", help="text, json (one line, a workflow matrix) or markdown.")] = "text",
) -> None:
    """Tenants, environments and Terraform roots whose rendered files differ from REF."""
    from generator import affected as lib

    if format not in ("text", "json", "markdown"):
        raise UsageError(f"unknown format '{format}' (expected text, json or markdown)")
    folder, model = _model(root)
    result = lib.affected(folder, base, model)
    if env is not None:
        if env not in {e.name for e in model.environments}:
            raise UsageError(f"unknown environment '{env}'")
        result = result.only(env)
    result = result.shard(shard)
    render_ = {"json": lambda r: lib.to_json(r) + "\n", "markdown": lib.to_markdown, "text": lib.to_text}[format]
    typer.echo(render_(result), nl=False)


@app.command()
def roots(
    env: Annotated[Optional[str], typer.Option("--env", help="Only this environment.")] = None,
    shard: Annotated[Optional[str], typer.Option("--shard", help="K/N: only every N-th root, starting at the K-th.")] = None,
    root: RootOption = None,
    format: FormatOption = "text",
) -> None:
    """Every Terraform root with its environment, account role and region (the drift matrix)."""
    from generator import affected as lib

    folder, model = _model(root)
    items = [r for r in lib.all_roots(model, lib.working_manifest(folder)) if env in (None, r.environment)]
    if shard is not None:
        items = lib.select_shard(items, shard)
    if format == "json":
        typer.echo(lib.roots_json(items))
    else:
        for r in items:
            typer.echo(f"{r.root}  {r.role_arn}  {r.region}")


@app.command("window-open")
def window_open(
    env: Annotated[str, typer.Option("--env", help="Environment whose change window to test.")],
    at: Annotated[Optional[str], typer.Option("--at", help="ISO 8601 time with offset (default: now).")] = None,
    root: RootOption = None,
) -> None:
    """Exit 0 inside the environment's change window (or if it has none), 1 outside."""
    from datetime import datetime, timezone

    from generator import changewindow

    _, model = _model(root)
    environment = model.environment(env)
    if environment is None:
        raise UsageError(f"unknown environment '{env}' (expected one of: {', '.join(e.name for e in model.environments)})")
    try:
        now = datetime.fromisoformat(at) if at else datetime.now(timezone.utc)
    except ValueError:
        raise UsageError(f"--at {at!r} is not an ISO 8601 time") from None
    if now.tzinfo is None:
        raise UsageError("--at needs a UTC offset, e.g. 2026-01-05T09:00:00+00:00")
    st = changewindow.is_open(environment, now)
    if environment.change_window is None:
        typer.echo(f"{env} has no change window: changes may go out at any time")
    elif st.open:
        typer.echo(f"{env} change window is open until {st.end:%Y-%m-%d %H:%M} UTC")
    else:
        nxt = f"; it next opens {st.start:%Y-%m-%d %H:%M} UTC" if st.start else ""
        typer.echo(f"{env} change window is closed{nxt} ({environment.change_window.schedule} for "
                   f"{environment.change_window.duration}, {environment.change_window.timezone})", err=True)
        raise typer.Exit(EXIT_DIFFERENT)


@app.command()
def smoke(
    env: Annotated[str, typer.Option("--env")],
    service: Annotated[str, typer.Option("--service", help="A service name or all.")] = "all",
    list_only: Annotated[bool, typer.Option("--list", help="Print the URLs, do not probe them.")] = False,
    attempts: Annotated[int, typer.Option("--attempts", min=1)] = 10,
    root: RootOption = None,
) -> None:
    """Probe the readiness endpoint of every public service in an environment; exit 1 if any fails."""
    from generator import smoke as lib

    _, model = _model(root)
    items = lib.checks(model, env, service)
    if list_only:
        for item in items:
            typer.echo(item.url)
        return
    failing = lib.run(items, attempts=attempts)
    for item, reason in failing:
        typer.echo(f"FAIL {item.url}: {reason}", err=True)
    typer.echo(f"{len(items) - len(failing)}/{len(items)} smoke checks passed")
    if failing:
        raise typer.Exit(EXIT_DIFFERENT)


@app.command()
def allocate(
    root: RootOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be allocated; write nothing.")] = False,
) -> None:
    """Record a VPC CIDR in catalog/networks.yaml for every VPC that lacks one."""
    from generator.load import find_root
    from generator.networks import allocate as run

    lines = run(find_root(root or Path.cwd()), write=not dry_run)
    for line in lines:
        typer.echo(line)
    if not lines:
        typer.echo("ok: every VPC has an allocation")


# --- guardrails (issue 7): logic in generator.policy / waivers / cost / lint / destructive ---


def _echo_waived(model) -> None:
    """Violations that a valid waiver covers: a note on stdout, never an error."""
    for waived in model.waived:
        typer.echo(str(waived))


policy_app = typer.Typer(help="Policy rules over the resolved catalog (guardrails as code).", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("list")
def policy_list(format: FormatOption = "text") -> None:
    """Print every rule: id, name and one-line rationale."""
    from generator.policy import describe_rules

    rules = describe_rules()
    if format == "json":
        typer.echo(json.dumps(rules, indent=2))
    else:
        for item in rules:
            typer.echo(f"{item['id']}  {item['name']:<28} {item['rationale']}")


@app.command()
def cost(
    base: Annotated[Optional[str], typer.Option("--base", help="Git ref to compare with; exit 1 when a tenant rises more than --max-increase.")] = None,
    max_increase: Annotated[float, typer.Option("--max-increase", help="Allowed rise of a tenant's monthly estimate, in percent.")] = DEFAULT_MAX_INCREASE,
    root: RootOption = None,
    format: FormatOption = "text",
) -> None:
    """Monthly cost estimate per tenant and environment from catalog/pricing.yaml."""
    from generator import cost as lib

    folder, model = _model(root)
    report = lib.run_at(folder, model, base, max_increase)
    if report.note:
        typer.echo(f"companyos: warning: {report.note}", err=True)
    typer.echo(json.dumps(report.as_dict(), indent=2) if format == "json" else lib.format_text(report), nl=format == "json")
    for row in report.exceeded:
        typer.echo(f"companyos: tenant '{row.tenant}' monthly estimate rises {row.change_percent:+.1f}% "
                   f"({row.base:,.2f} -> {row.current:,.2f} USD), more than {max_increase:g}%", err=True)
    if report.exceeded:
        raise typer.Exit(EXIT_DIFFERENT)


@app.command()
def lint(
    root: RootOption = None,
    format: FormatOption = "text",
    checkov: Annotated[bool, typer.Option("--checkov/--no-checkov", help="Run checkov (slow) besides the structural validators.")] = True,
) -> None:
    """Lint a fresh render: checkov (skips in catalog/lint.yaml) and structural validators."""
    from generator import lint as lib

    built = pipeline.build(root)
    report = lib.run(built, use_checkov=checkov)
    typer.echo(json.dumps(report.as_dict(), indent=2) if format == "json" else lib.format_text(report), nl=format == "json")
    if not report.ok:
        raise typer.Exit(EXIT_DIFFERENT)


class _rolled_back_on_interrupt:
    """typer turns Ctrl-C into a silent exit 130; say that the lifecycle command undid its work."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        if kind is KeyboardInterrupt:
            typer.echo("companyos: interrupted; every file was restored and no branch was made", err=True)
            raise typer.Exit(130) from None
        return False


@app.command("new-tenant")
def new_tenant(
    name: Annotated[str, typer.Argument(help="Tenant name: 2-20 lowercase letters, digits and '-'.")],
    tier: Annotated[Optional[str], typer.Option("--tier", help="Tier from catalog/tiers/.")] = None,
    owner: Annotated[Optional[str], typer.Option("--owner", help="Owning team's e-mail address.")] = None,
    cost_center: Annotated[Optional[str], typer.Option("--cost-center", help="Cost center, e.g. CC-2001.")] = None,
    environments: Annotated[Optional[list[str]], typer.Option("--environments", help="Comma-separated or repeated (default: all, in promotion order).")] = None,
    services: Annotated[Optional[list[str]], typer.Option("--services", help="Comma-separated or repeated (default: all).")] = None,
    canary: Annotated[Optional[bool], typer.Option("--canary/--no-canary", help="Receive changes in the first progressive-sync wave.")] = None,
    account: Annotated[Optional[list[str]], typer.Option("--account", help="ENV=ACCOUNT_ID, once per environment (dedicated tiers).")] = None,
    no_input: Annotated[bool, typer.Option("--no-input", help="Never prompt; missing required values are errors.")] = False,
    no_commit: Annotated[bool, typer.Option("--no-commit", help="Write the files only: no branch, no commit.")] = False,
    allow_dirty: Annotated[bool, typer.Option("--allow-dirty", help="Run over uncommitted changes in the catalog and rendered tree.")] = False,
    root: RootOption = None,
) -> None:
    """Scaffold tenants/NAME.yaml from templates/tenant/, allocate, render, and commit it on branch tenant/NAME."""
    from generator import scaffold

    request = scaffold.TenantRequest(
        name=name, tier=tier, owner=owner, cost_center=cost_center,
        environments=scaffold.split_list(environments), services=scaffold.split_list(services),
        canary=canary, accounts=scaffold.parse_accounts(account or []),
    )
    interactive = not no_input and sys.stdin.isatty() and sys.stdout.isatty()
    with _rolled_back_on_interrupt():
        result = scaffold.new_tenant(root, request, interactive=interactive, commit=not no_commit, allow_dirty=allow_dirty)
    for rel in result.created:
        typer.echo(f"created   {rel}")
    for line in result.allocations:
        typer.echo(f"allocated {line}")
    typer.echo(f"rendered  {len(result.tenant_outputs)} files for tenant '{result.name}' "
               f"({len(result.report.written)} written, {len(result.report.pruned)} pruned in total)")
    if result.commit:
        typer.echo(f"committed {len(result.files)} files as {result.commit[:12]} on branch {result.branch} (now checked out)")
        typer.echo(f"next: git push -u origin {result.branch}, then open a pull request (e.g. gh pr create --fill)")
    else:
        typer.echo("next: review `git status`, commit the files above on a branch and open a pull request")


@app.command("update-tenants")
def update_tenants(
    tenant: Annotated[Optional[list[str]], typer.Option("--tenant", help="Only these tenants (repeatable; default: all).")] = None,
    root: RootOption = None,
) -> None:
    """Merge changes of templates/tenant/ into existing tenant files (three-way; keeps hand edits)."""
    from generator import scaffold

    with _rolled_back_on_interrupt():
        result = scaffold.update_tenants(root, tenant or ())
    for item in result.tenants:
        typer.echo(f"{item.status:<10} {item.name}" + (f": {item.detail}" if item.detail else ""),
                   err=item.status in {"conflict", "error"})
    if result.report is not None:
        typer.echo(f"rendered: {len(result.report.written)} written, {len(result.report.pruned)} pruned")
    if result.conflicts or result.errors:
        typer.echo(f"companyos: {len(result.conflicts)} tenant(s) with conflicts, {len(result.errors)} not updated", err=True)
        raise typer.Exit(EXIT_DIFFERENT if not result.errors else EXIT_USER_ERROR)


@app.command("remove-tenant")
def remove_tenant(
    name: str,
    acknowledge_data_retention: Annotated[bool, typer.Option("--acknowledge-data-retention", help="Required for dedicated (regulated) tenants.")] = False,
    root: RootOption = None,
) -> None:
    """Remove a tenant from the catalog and re-render; prints the decommission checklist (destroys nothing)."""
    from generator import scaffold

    with _rolled_back_on_interrupt():
        result = scaffold.remove_tenant(root, name, acknowledge_data_retention=acknowledge_data_retention)
    for rel in result.removed:
        typer.echo(f"removed   {rel}")
    for line in result.released:
        typer.echo(f"network   {line}")
    typer.echo(f"pruned    {len(result.report.pruned)} generated files ({len(result.report.written)} rewritten)")
    typer.echo("\nNothing was destroyed. Decommission checklist:")
    typer.echo("\n".join(result.checklist))
    typer.echo("\nnext: commit on a branch (e.g. tenant/remove-" + name + ") and open a pull request")


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
        _report(errors)
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


if __name__ == "__main__":
    main()
