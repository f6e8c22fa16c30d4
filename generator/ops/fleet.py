"""What generated workflows read at run time instead of listing the fleet in their YAML.

A workflow that named every tenant (chaos namespaces, restore-drill databases) changed with
every onboarding, so two onboarding pull requests conflicted in it. They now ask
``companyos list-tenants`` and ``companyos restore-targets`` when they run; big answers are
cut into at most 256 batches (GitHub's matrix limit) like ``companyos batches``.
"""

from __future__ import annotations

import json
from typing import Any

from generator.errors import UsageError
from generator.model import naming, networks
from generator.model.resolve import Model
from generator.targets.workflows import restore_targets


def tenants(model: Model, env: str | None = None) -> list[dict[str, str]]:
    """Every (tenant, environment) with its namespace, cell and cluster."""
    if env is not None and model.environment(env) is None:
        raise UsageError(f"unknown environment '{env}' (expected one of: {', '.join(e.name for e in model.environments)})")
    out = []
    for environment in model.environments:
        if env not in (None, environment.name):
            continue
        for d in model.in_environment(environment.name):
            cell = networks.tenant_cell(model.catalog, environment.name, d.name)
            out.append(
                {
                    "tenant": d.name,
                    "environment": environment.name,
                    "namespace": naming.namespace(d.name),
                    "cell": cell,
                    "cluster": networks.cell_cluster(model.platform, environment, cell),
                }
            )
    return out


def cut(rows: list[Any], max_jobs: int) -> list[list[Any]]:
    """``rows`` in at most ``max_jobs`` contiguous, near-equal batches."""
    if max_jobs < 1:
        raise UsageError(f"--max-jobs {max_jobs}: must be at least 1")
    if not rows:
        return []
    jobs = min(max_jobs, len(rows))
    size, extra = divmod(len(rows), jobs)
    out, start = [], 0
    for k in range(jobs):
        end = start + size + (1 if k < extra else 0)
        out.append(rows[start:end])
        start = end
    return out


def matrix(rows: list[Any], max_jobs: int) -> str:
    """``rows`` cut into at most ``max_jobs`` batches, as :func:`as_matrix`."""
    return as_matrix(cut(rows, max_jobs), len(rows))


def as_matrix(parts: list[list[Any]], count: int) -> str:
    """One line of JSON for a workflow's matrix, a job per part: ``{"count", "jobs", "include":
    [{"batch": "K/N", "name", "size"}]}`` (``count``: the rows the parts hold)."""
    data = {
        "count": count,
        "jobs": len(parts),
        # name: the batch in a form artifact and concurrency names accept ("K/N" has a slash)
        "include": [{"batch": f"{k}/{len(parts)}", "name": f"{k}-of-{len(parts)}", "size": len(p)} for k, p in enumerate(parts, start=1)],
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def part(spec: str, option: str) -> tuple[int, int]:
    """``K/N`` (``--batch``, ``--shard``) as (K, N) with 1 <= K <= N, else a UsageError naming ``option``."""
    k_text, _, n_text = spec.partition("/")
    if not (k_text.isdigit() and n_text.isdigit() and 1 <= int(k_text) <= int(n_text)):
        raise UsageError(f"{option} {spec!r}: expected K/N with 1 <= K <= N, e.g. 2/3")
    return int(k_text), int(n_text)


def pick(rows: list[Any], spec: str, max_jobs: int) -> list[Any]:
    """Batch ``K/N`` of :func:`matrix` (N must match: a stale matrix is refused)."""
    k, n = part(spec, "--batch")
    parts = cut(rows, max_jobs)
    if n != len(parts):
        raise UsageError(f"--batch {spec}: there are {len(parts)} batches, not {n}")
    return parts[k - 1]


def restore_rows(model: Model) -> list[dict[str, Any]]:
    """The restore drill's databases (one per dedicated tenant and per pool of prod)."""
    return restore_targets(model)


def restore_tsv(rows: list[dict[str, Any]]) -> str:
    """owner, environment, db instance, source account, region: one database per line."""
    return "".join(f"{r['owner']}\t{r['environment']}\t{r['db_instance']}\t{r['source_account']}\t{r['region']}\n" for r in rows)
