"""``move-tenant``, ``list-tenants``, ``batches``, ``restore-targets``: the fleet at scale.

Cells (which cluster runs a tenant) and what CI reads at run time instead of a tenant list
in the workflow YAML; matrices are cut to GitHub's 256 jobs (ops/affected.py, ops/fleet.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from generator.catalog.folders import find_root
from generator.cli.common import RootOption, model_for
from generator.errors import UsageError
from generator.model.ci import MAX_JOBS

MaxJobsOption = Annotated[int, typer.Option("--max-jobs", help="Most jobs in one matrix (GitHub allows 256).")]
BatchOption = Annotated[str | None, typer.Option("--batch", help="K/N: print batch K's items instead of the matrix.")]


def move_tenant(
    tenant: Annotated[str, typer.Argument(help="Tenant to move.")],
    env: Annotated[str, typer.Option("--env", help="Environment whose cell changes.")],
    cell: Annotated[str, typer.Option("--cell", help="Cell (cluster) to move the tenant to.")],
    root: RootOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the migration plan; record nothing.")] = False,
) -> None:
    """Move a tenant to another cell: print the migration plan and record the move in catalog/networks.yaml."""
    from generator.ops.cells import move_tenant as run

    move = run(find_root(root or Path.cwd()), tenant, env, cell, write=not dry_run)
    for line in move.plan():
        typer.echo(line)
    typer.echo("dry run: nothing recorded" if dry_run else "recorded; run `companyos render` to write the files")


def list_tenants(
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    root: RootOption = None,
    format: Annotated[
        str, typer.Option("--format", help="text, json, namespaces (space-separated), tsv (namespace, cluster) or matrix (batches).")
    ] = "text",
    max_jobs: MaxJobsOption = MAX_JOBS,
    batch: BatchOption = None,
) -> None:
    """Every tenant per environment with its namespace, cell and cluster (what workflows loop over)."""
    from generator.ops import fleet

    if format not in ("text", "json", "namespaces", "tsv", "matrix"):
        raise UsageError(f"unknown format '{format}' (expected text, json, namespaces, tsv or matrix)")
    _, model = model_for(root)
    rows = fleet.tenants(model, env)
    if format == "matrix":
        typer.echo(fleet.matrix(rows, max_jobs))
        return
    if batch is not None:
        rows = fleet.pick(rows, batch, max_jobs)
    if format == "tsv":
        typer.echo("".join(f"{r['namespace']}\t{r['cluster']}\n" for r in rows), nl=False)
    elif format == "json":
        typer.echo(json.dumps(rows, sort_keys=True, separators=(",", ":")))
    elif format == "namespaces":
        typer.echo(" ".join(r["namespace"] for r in rows))
    else:
        for r in rows:
            typer.echo(f"{r['environment']}  {r['tenant']}  {r['namespace']}  {r['cell']}  {r['cluster']}")


def batches(
    base: Annotated[str, typer.Option("--base", help="Git ref to compare with (branch, tag or commit).")],
    layer: Annotated[str | None, typer.Option("--layer", help="org, shared, pool or tenant (plan and apply in this order).")] = None,
    env: Annotated[str | None, typer.Option("--env", help="Only this environment (one apply stage).")] = None,
    max_jobs: MaxJobsOption = MAX_JOBS,
    batch: BatchOption = None,
    shard: Annotated[
        str | None,
        typer.Option("--shard", help="S/M: only every M-th root of the layer from the S-th (a layer the workflow splits into M matrices)."),
    ] = None,
    github_output: Annotated[
        bool, typer.Option("--github-output", help="Every matrix the terraform workflow reads, as name=json lines for $GITHUB_OUTPUT.")
    ] = False,
    root: RootOption = None,
) -> None:
    """Affected Terraform roots of one layer as a batched matrix (one line of JSON), or with
    --batch K/N the roots of batch K, one per line: directory, id, role ARN, region."""
    from generator.ops import affected as lib

    folder, model = model_for(root)
    result = lib.affected(folder, base, model)
    if github_output:
        for name, items in lib.workflow_matrices(result, [e.name for e in model.environments]):
            typer.echo(f"{name}={lib.batch_matrix(items, max_jobs)}")
        return
    if layer is None:
        raise UsageError("--layer is required (org, shared, pool or tenant), unless --github-output")
    if env is not None:
        if env not in {e.name for e in model.environments}:
            raise UsageError(f"unknown environment '{env}'")
        org = result.org
        result = result.only(env)
        result.org = org if layer == "org" else None
    items = result.layer(layer)
    if shard is not None:
        items = lib.select_shard(items, shard)
    if batch is None:
        typer.echo(lib.batch_matrix(items, max_jobs))
    else:
        typer.echo(lib.roots_tsv(lib.select_batch(items, batch, max_jobs)), nl=False)


def restore_targets(
    max_jobs: MaxJobsOption = MAX_JOBS,
    batch: BatchOption = None,
    root: RootOption = None,
) -> None:
    """The restore drill's databases as a batched matrix, or with --batch K/N batch K's
    databases, one per line: owner, environment, instance, source account, region."""
    from generator.ops import fleet

    _, model = model_for(root)
    rows = fleet.restore_rows(model)
    if batch is None:
        typer.echo(fleet.matrix(rows, max_jobs))
    else:
        typer.echo(fleet.restore_tsv(fleet.pick(rows, batch, max_jobs)), nl=False)
