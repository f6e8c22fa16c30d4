"""``affected``, ``roots``, ``window-open``, ``smoke``, ``cost``, ``lint``: what CI and operators run."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer

from generator.catalog.folders import find_root
from generator.cli.common import EXIT_DIFFERENT, FormatOption, RootOption, model_for
from generator.cli.fleet_commands import BatchOption, MaxJobsOption
from generator.errors import UsageError
from generator.model.ci import DEFAULT_MAX_INCREASE, LINT_UNITS_PER_JOB, MAX_JOBS


def affected(
    base: Annotated[str, typer.Option("--base", help="Git ref to compare with (branch, tag or commit).")],
    env: Annotated[str | None, typer.Option("--env", help="Only this environment (one apply stage).")] = None,
    shard: Annotated[str | None, typer.Option("--shard", help="K/N: only every N-th root, starting at the K-th.")] = None,
    root: RootOption = None,
    format: Annotated[str, typer.Option("--format", help="text, json (one line, a workflow matrix) or markdown.")] = "text",
) -> None:
    """Tenants, environments and Terraform roots whose rendered files differ from REF."""
    from generator.ops import affected as lib

    if format not in ("text", "json", "markdown"):
        raise UsageError(f"unknown format '{format}' (expected text, json or markdown)")
    folder, model = model_for(root)
    result = lib.affected(folder, base, model)
    if env is not None:
        if env not in {e.name for e in model.environments}:
            raise UsageError(f"unknown environment '{env}'")
        result = result.only(env)
    result = result.shard(shard)
    render_ = {"json": lambda r: lib.to_json(r) + "\n", "markdown": lib.to_markdown, "text": lib.to_text}[format]
    typer.echo(render_(result), nl=False)


def roots(
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    shard: Annotated[str | None, typer.Option("--shard", help="K/N: only every N-th root, starting at the K-th.")] = None,
    root: RootOption = None,
    format: Annotated[str, typer.Option("--format", help="text, json, or matrix (batches, like `companyos batches`).")] = "text",
    max_jobs: MaxJobsOption = MAX_JOBS,
    batch: BatchOption = None,
) -> None:
    """Every Terraform root with its environment, account role and region (the drift
    workflow's matrix: ``--format matrix`` cuts it into at most ``--max-jobs`` batches and
    ``--batch K/N`` prints batch K's roots, one per line: directory, id, role ARN, region)."""
    from generator.ops import affected as lib

    if format not in ("text", "json", "matrix"):
        raise UsageError(f"unknown format '{format}' (expected text, json or matrix)")
    folder, model = model_for(root)
    items = [r for r in lib.all_roots(model, lib.working_roots(folder)) if env in (None, r.environment)]
    if shard is not None:
        items = lib.select_shard(items, shard)
    if batch is not None:
        typer.echo(lib.roots_tsv(lib.select_batch(items, batch, max_jobs)), nl=False)
    elif format == "matrix":
        typer.echo(lib.batch_matrix(items, max_jobs))
    elif format == "json":
        typer.echo(lib.roots_json(items))
    else:
        for r in items:
            typer.echo(f"{r.root}  {r.role_arn}  {r.region}")


def window_open(
    env: Annotated[str, typer.Option("--env", help="Environment whose change window to test.")],
    at: Annotated[str | None, typer.Option("--at", help="ISO 8601 time with offset (default: now).")] = None,
    root: RootOption = None,
) -> None:
    """Exit 0 inside the environment's change window (or if it has none), 1 outside."""
    from datetime import datetime

    from generator.catalog import changewindow

    _, model = model_for(root)
    environment = model.environment(env)
    if environment is None:
        raise UsageError(f"unknown environment '{env}' (expected one of: {', '.join(e.name for e in model.environments)})")
    try:
        now = datetime.fromisoformat(at) if at else datetime.now(UTC)
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
        typer.echo(
            f"{env} change window is closed{nxt} ({environment.change_window.schedule} for "
            f"{environment.change_window.duration}, {environment.change_window.timezone})",
            err=True,
        )
        raise typer.Exit(EXIT_DIFFERENT)


def smoke(
    env: Annotated[str, typer.Option("--env")],
    service: Annotated[str, typer.Option("--service", help="A service name or all.")] = "all",
    list_only: Annotated[bool, typer.Option("--list", help="Print the URLs, do not probe them.")] = False,
    attempts: Annotated[int, typer.Option("--attempts", min=1)] = 10,
    root: RootOption = None,
) -> None:
    """Probe the readiness endpoint of every public service in an environment; exit 1 if any fails."""
    from generator.ops import smoke as lib

    _, model = model_for(root)
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


def cost(
    base: Annotated[
        str | None, typer.Option("--base", help="Git ref to compare with; exit 1 when a tenant rises more than --max-increase.")
    ] = None,
    max_increase: Annotated[
        float, typer.Option("--max-increase", help="Allowed rise of a tenant's monthly estimate, in percent.")
    ] = DEFAULT_MAX_INCREASE,
    max_unit_increase: Annotated[
        float | None,
        typer.Option(
            "--max-unit-increase",
            help="Allowed rise of a tenant's cost per declared unit (1k requests), in percent (default: --max-increase).",
        ),
    ] = None,
    root: RootOption = None,
    format: FormatOption = "text",
) -> None:
    """Monthly cost estimate per tenant and environment from catalog/pricing.yaml."""
    from generator.ops import cost as lib

    folder, model = model_for(root)
    unit_limit = max_increase if max_unit_increase is None else max_unit_increase
    report = lib.run_at(folder, model, base, max_increase, unit_limit)
    if report.note:
        typer.echo(f"companyos: warning: {report.note}", err=True)
    typer.echo(json.dumps(report.as_dict(), indent=2) if format == "json" else lib.format_text(report), nl=format == "json")
    for row in report.exceeded:
        typer.echo(
            f"companyos: tenant '{row.tenant}' monthly estimate rises {row.change_percent:+.1f}% "
            f"({row.base:,.2f} -> {row.current:,.2f} USD), more than {max_increase:g}%",
            err=True,
        )
    for unit in report.unit_exceeded:
        top = ", ".join(f"{part} {change:+,.2f} USD/month" for part, change in unit.contributors) or "none rose"
        typer.echo(
            f"companyos: tenant '{unit.tenant}' cost per 1k requests rises {unit.change_percent:+.1f}% "
            f"({unit.base:,.4f} -> {unit.current:,.4f} USD), more than {unit_limit:g}%; top contributors: {top}",
            err=True,
        )
    if report.exceeded or report.unit_exceeded:
        raise typer.Exit(EXIT_DIFFERENT)


def isolation(
    root: RootOption = None,
    format: FormatOption = "text",
    env: Annotated[
        list[str] | None, typer.Option("--env", help="Only this environment (repeatable): one CI job per environment at scale.")
    ] = None,
) -> None:
    """Prove from the rendered tree that no tenant reaches another (docs/isolation.md); exit 1
    with each path found, hop by hop with its rendered file:line."""
    from generator import pipeline
    from generator.ops import isolation as lib
    from generator.ops import parse_memo

    if format not in ("text", "json"):
        raise UsageError(f"unknown format '{format}' (expected text or json)")
    folder = find_root(root or Path.cwd())
    known = lib.environments(folder)
    unknown = sorted(set(env or ()) - set(known))
    if unknown:
        raise UsageError(f"no rendered environment {', '.join(repr(e) for e in unknown)} (rendered: {', '.join(known) or 'none'})")
    organization = pipeline.load(folder).platform.spec.organization
    findings = lib.analyze(folder, organization, cache=parse_memo.memo_folder(folder), only=env or ())
    typer.echo(lib.to_json(findings) if format == "json" else lib.to_text(findings), nl=False)
    if findings:
        raise typer.Exit(EXIT_DIFFERENT)


def lint(
    root: RootOption = None,
    format: Annotated[
        str, typer.Option("--format", help="text, json, or matrix (with --base or --committed: the jobs of a whole lint).")
    ] = "text",
    checkov: Annotated[bool, typer.Option("--checkov/--no-checkov", help="Run checkov (slow) besides the structural validators.")] = True,
    isolation: Annotated[
        bool | None,
        typer.Option(
            "--isolation/--no-isolation",
            help="Run the isolation analyzer (`companyos isolation`) over the render too (default: unless --base or --committed).",
        ),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            "--base", help="Lint only the output HEAD's commit added or changed since this commit (all of it when lint itself changed)."
        ),
    ] = None,
    committed: Annotated[
        bool, typer.Option("--committed", help="Lint every output file of HEAD's commit, read from git's objects (no render).")
    ] = False,
    batch: Annotated[
        str | None, typer.Option("--batch", help="K/N: only the K-th of the N parts of the units in play (--format matrix gives N).")
    ] = None,
    units_per_job: Annotated[int, typer.Option("--units-per-job", help="--format matrix: tenant units per job.")] = LINT_UNITS_PER_JOB,
    max_jobs: MaxJobsOption = MAX_JOBS,
) -> None:
    """Lint a fresh render: checkov (skips in catalog/lint.yaml), structural validators and the
    isolation analyzer; with --base, what a pull request's commit changed; with --committed,
    HEAD's commit; --format matrix and --batch split either into jobs (docs/guardrails.md)."""
    from generator import pipeline
    from generator.ops import lint as lib
    from generator.ops import lint_scope

    if format not in ("text", "json", "matrix"):
        raise UsageError(f"unknown format '{format}' (expected text, json or matrix)")
    from_git = base is not None or committed
    if base is not None and committed:
        raise UsageError("lint: --base lints HEAD's commit already; --committed is for no base (every output file of HEAD)")
    if from_git and isolation:
        raise UsageError(
            "lint --base/--committed does not run the isolation analyzer: run `companyos isolation` (one job per environment in CI)"
        )
    if not from_git and (format == "matrix" or batch is not None):
        raise UsageError("lint --format matrix and --batch split a lint of HEAD's commit: give --base REF or --committed")
    folder = find_root(root or Path.cwd())
    if format == "matrix":
        typer.echo(lint_scope.matrix(folder, base, units_per_job, max_jobs))
        return
    part = None
    if batch is not None:
        part = lint_scope.Batch.parse(batch)
        lint_scope.require_batch(folder, base, part, units_per_job, max_jobs)
    if checkov:
        lib.checkov_binary(folder)  # before the render: a usage error costs nothing
    if from_git:
        report = lib.run_since(folder, base, use_checkov=checkov, batch=part)
    else:
        built = pipeline.build(root)
        report = lib.run(built, use_checkov=checkov, use_isolation=isolation is not False)
    typer.echo(json.dumps(report.as_dict(), indent=2) if format == "json" else lib.format_text(report))
    if not report.ok:
        raise typer.Exit(EXIT_DIFFERENT)
