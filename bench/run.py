"""Benchmark: companyos against a bare Jinja2 loop on the same templates.

For synthetic catalogs of 10, 100 and 1000 tenants x 3 environments it reports cold
``render`` (empty rendered/), no-op ``render`` (nothing changed), ``check`` on an unchanged
tree, peak RSS, files written, and the same template work done by a bare Jinja2 loop (a
plain ``jinja2.Environment`` over templates/, rendering every (template, context) pair the
targets render and writing each result to a file) in the same run, as a ratio.

Each measurement runs in its own process so peak RSS and caches are per measurement.

    python bench/run.py                 # 10, 100, 1000 tenants
    python bench/run.py --sizes 10 100  # a subset
    python bench/run.py --markdown      # table for docs/benchmark.md
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
COPY = ("catalog", "environments", "templates")
SERVICES = ("api", "worker", "web")


def make_catalog(root: Path, tenants: int) -> None:
    """A copy of the sample catalog with ``tenants`` synthetic tenants (1 in 10 regulated:
    the sample address plan has room for ~240 dedicated VPCs per environment)."""
    for item in COPY:
        shutil.copytree(REPO / item, root / item)
    for env_file in (root / "environments").glob("*.yaml"):
        # A NodePool budget the synthetic quotas fit in (CO034); the sample's default is for ~60 tenants.
        budget = f"node_limits:\n  cpu: {max(2000, 64 * tenants)}\n  memory_gib: {max(8000, 128 * tenants)}\n"
        env_file.write_text(env_file.read_text().rstrip("\n") + "\n" + budget)
    (root / "tenants").mkdir()
    envs = ("dev", "stage", "prod")
    for i in range(tenants):
        name = f"t{i:05d}"
        regulated = i % 10 == 0
        lines = [
            f"name: {name}",
            f"tier: {'regulated' if regulated else 'standard'}",
            f"owner: team-{i}@example.com",
            f"cost_center: CC-{1000 + i % 9000}",
            f"environments: [{', '.join(envs)}]",
            f"services: [{', '.join(SERVICES[: 1 + i % 3])}]",
        ]
        if regulated:
            lines.append("accounts:")
            lines += [f'  {env}: "{5 + n}{i:011d}"' for n, env in enumerate(envs)]
        if i % 3 == 0:
            lines += ["overrides:", "  prod:", "    services:", "      api:", f"        replicas: {3 + i % 5}"]
        (root / "tenants" / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    if tenants > WIDE_PLAN_ABOVE:
        _widen_address_plan(root, tenants)
    from generator.ops.allocate import allocate

    allocate(root, write=True)


#: The sample's /12 per environment holds ~240 dedicated VPCs (1 tenant in 10 is dedicated).
WIDE_PLAN_ABOVE = 2000
#: Six /11s (three environments, primary and DR) fill most of 10.0.0.0/8: above this many
#: tenants the dedicated VPCs are /22 instead of /20 (~1,980 per /11).
SMALL_VPCS_ABOVE = 5000


def _widen_address_plan(root: Path, tenants: int) -> None:
    """A /11 primary and DR space per environment (~500 dedicated /20 VPCs each, ~1,980 /22s
    above :data:`SMALL_VPCS_ABOVE` tenants), every VPC allocated afresh: the sample's records
    sit in its /12 plan."""
    path = root / "catalog" / "networks.yaml"
    plan = yaml.safe_load(path.read_text())
    if tenants > SMALL_VPCS_ABOVE:
        plan["vpc_prefix"] = 22
    for index, env in enumerate(sorted(plan["environments"])):
        block = plan["environments"][env]
        block["primary"] = f"10.{64 * index}.0.0/11"
        block["dr"] = f"10.{64 * index + 32}.0.0/11"
        block["vpcs"] = {}
    path.write_text(yaml.safe_dump(plan, sort_keys=False))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _workers_rss_mb() -> float:
    """The largest peak RSS among this process's finished children: the render workers and
    the worker ``forked.apart`` forks (shared pages counted, as ``ps`` shows them)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _peaks() -> dict:
    """The peak RSS of this process and of its largest finished child, for a worker's result."""
    return {"rss_mb": _rss_mb(), "workers_rss_mb": _workers_rss_mb()}


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its (finished) render workers."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


# --- workers (each runs in its own process) ----------------------------------------------


def worker_render(root: Path) -> dict:
    """``companyos render``: with nothing changed since the last verified-clean record, the
    record answers (output/checkcache.py)."""
    from generator import pipeline

    start, cpu = time.perf_counter(), _cpu_s()
    done = pipeline.render_tree(root)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "cpu_s": _cpu_s() - cpu,
        "files": done.files,
        "written": len(done.report.written),
        **_peaks(),
    }


def worker_render_unrecorded(root: Path) -> dict:
    """A no-op ``render`` without the verified-clean record (a fresh clone, another day):
    every unit is verified against its manifest."""
    shutil.rmtree(root / ".companyos-cache", ignore_errors=True)
    return worker_render(root)


def worker_check(root: Path, use_cache: bool = True, full: bool = True) -> dict:
    """``companyos check``: by default as a developer runs it, with the verified-clean cache."""
    from generator import pipeline

    start = time.perf_counter()
    _, status = pipeline.check(root, use_cache=use_cache, full=full)
    seconds = time.perf_counter() - start
    assert status.clean, status.as_dict()
    return {"seconds": seconds, **_peaks()}


def worker_bare(root: Path) -> dict:
    """Record every (template, context) the targets render, then time a bare Jinja2 loop
    that renders exactly those with a plain Environment and writes each to a file."""
    from generator import pipeline
    from generator.formats import templating

    calls: list[tuple[str, dict]] = []
    real_render = templating.Templates.render

    def recording(self, name, **context):
        calls.append((name, context))
        return real_render(self, name, **context)

    templating.Templates.render = recording  # type: ignore[method-assign]
    pipeline.build(root, jobs=1)  # record in this process
    templating.Templates.render = real_render  # type: ignore[method-assign]

    # The same garbage-collector settings as the render: the baseline must not be slowed
    # by a process-level default that the render itself changes.
    # Templates compiled before the clock starts: the render loads them compiled from Jinja's
    # bytecode cache, so compiling inside the timed loop would flatter the render.
    env = _plain_environment(root)
    for name in sorted({name for name, _ in calls}):
        env.get_template(name)
    with pipeline.fewer_collections():
        start, cpu = time.perf_counter(), _cpu_s()
        _bare_loop(root, calls, env)
        seconds, cpu = time.perf_counter() - start, _cpu_s() - cpu
    return {"seconds": seconds, "cpu_s": cpu, "files": len(calls), "rss_mb": _rss_mb()}


def _plain_environment(root: Path):
    """A plain ``jinja2.Environment`` over the templates: the same filters and whitespace
    options as the render, nothing else (no StrictUndefined, no precompiled set)."""
    import jinja2

    from generator.formats.templating import FILTERS

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(root / "templates"), keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters.update(FILTERS)
    return env


class _PlainWriter:
    """What anyone would write: make the folder once, then ``write_text``."""

    def __init__(self) -> None:
        self.made: set[Path] = set()

    def __call__(self, path: Path, text: str) -> None:
        if path.parent not in self.made:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.made.add(path.parent)
        path.write_text(text, encoding="utf-8")


def _bare_loop(root: Path, calls: list[tuple[str, dict]], env: Any) -> None:
    """Render every recorded (template, context) with a plain Environment, write each."""
    write, out = _PlainWriter(), root / "bare"
    for index, (name, context) in enumerate(calls):
        write(out / name.split("/")[0] / f"{index // 100}" / f"{index}.out", env.get_template(name).render(**context))


def worker_check_full(root: Path) -> dict:
    return worker_check(root, use_cache=False)


# --- incremental (docs/incremental.md): one tenant edited, or nothing -----------------------

#: The tenant the one-tenant scenarios edit (its owner, which lands in its tags).
EDITED = "t00001"


def _edit_one_tenant(root: Path) -> None:
    path = root / "tenants" / f"{EDITED}.yaml"
    lines = [f"owner: team-{time.time_ns()}@example.com" if line.startswith("owner:") else line for line in path.read_text().splitlines()]
    path.write_text("\n".join(lines) + "\n")


def worker_check_incremental(root: Path) -> dict:
    """``check`` without the verified-clean cache: every unit verified against its record."""
    return worker_check(root, use_cache=False, full=False)


def worker_edit_render(root: Path) -> dict:
    """``render`` after one tenant's file changed: that tenant renders, the rest is reused."""
    _edit_one_tenant(root)
    return worker_render(root)


def worker_check_base(root: Path) -> dict:
    """A pull request that edits one tenant (edited and rendered by the ``edit-render`` worker
    just before), checked in a process of its own as the CLI runs ``check --base`` (the
    destruction report included) against the committed base, the local cache in place (a
    developer's tree; CI checks the commit: :func:`worker_check_base_committed`). The base's tree exported
    from git is part of the time."""
    return _check_base(root, "HEAD")


def _check_base(root: Path, ref: str, *, committed: bool = False) -> dict:
    from generator.catalog import snapshot
    from generator.ops.destructive import check_base

    start = time.perf_counter()
    with snapshot.at(root, ref, head=committed) as base:
        exported = time.perf_counter() - start
        _, status, _ = check_base(root, base)  # as the CLI runs it: the destruction report too
    seconds = time.perf_counter() - start
    assert status.clean, status.as_dict()
    return {"seconds": seconds, "export_s": exported, "rss_mb": _rss_mb()}


def worker_check_base_ci(root: Path) -> dict:
    """:func:`worker_check_base` in a fresh checkout: no local cache (the git-ignored
    ``.companyos-cache``: the folder listing, the parses, the verified-clean record), so
    every output folder is read and every catalog file parsed. The cache is set aside for
    the run and put back."""
    with _no_local_cache(root):
        return worker_check_base(root)


def worker_check_base_committed(root: Path) -> dict:
    """The pull request committed (HEAD) and checked as CI runs it: ``check --base HEAD~1
    --committed`` (HEAD's commit from git's objects, ``output.head_status``), no local cache."""
    with _no_local_cache(root):
        return _check_base(root, "HEAD~1", committed=True)


@contextlib.contextmanager
def _no_local_cache(root: Path) -> Iterator[None]:
    """``.companyos-cache`` set aside for the run and put back."""
    cache, aside = root / ".companyos-cache", root / ".companyos-cache.aside"
    cache.rename(aside)
    try:
        yield
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        aside.rename(cache)


def _commit(root: Path, message: str = "base") -> None:
    """Everything under ``root`` committed (the repository made on the first call, the base of
    ``check --base``; ``scale.py`` commits its edits with it too)."""
    from generator.git import scratch_repo

    shutil.copy(REPO / ".gitignore", root / ".gitignore")  # the lock, the journal and the caches stay out
    repo = scratch_repo(root)
    # no background `git gc --auto` after the commit: packing ~80,000 new objects on the other
    # core slowed the committed-tree runs that followed by 2x (a user's repository packs them once)
    repo.git.config("gc.auto", "0")
    repo.git.config("maintenance.auto", "false")
    repo.git.add("-A")
    repo.git.commit("-q", "-m", message)


def worker_bare_targets(root: Path) -> dict:
    """A second, looser baseline: the targets' own code builds every context over the
    already-resolved model and renders through a plain ``jinja2.Environment`` (no
    StrictUndefined), writing each file directly -- what is left out is exactly the
    framework: loading and validation, layering and provenance, guardrails, headers,
    manifest and hashes, atomic staging and pruning."""
    from generator import pipeline
    from generator.formats.templating import Templates
    from generator.targets import TARGETS

    model = pipeline.resolve_only(root)
    out = root / "bare-targets"
    env, write = _plain_environment(root), _PlainWriter()

    class Plain:
        path = staticmethod(Templates.path)

        @staticmethod
        def render(name: str, **context: object) -> str:
            return env.get_template(name).render(**context)

    for name in env.list_templates(filter_func=lambda n: n.endswith(".j2")):
        env.get_template(name)  # compiled before the clock starts, as in the bare loop
    count = 0
    with pipeline.fewer_collections():  # as the render and the bare loop run
        start = time.perf_counter()
        for target in TARGETS:
            for item in target.render(model, Plain()):  # type: ignore[arg-type]
                write(out / item.path, item.text)
                count += 1
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "files": count, "rss_mb": _rss_mb()}


WORKERS = {
    "render": worker_render,
    "render-unrecorded": worker_render_unrecorded,
    "check": worker_check,
    "check-full": worker_check_full,
    "check-incremental": worker_check_incremental,
    "edit-render": worker_edit_render,
    "check-base": worker_check_base,
    "check-base-ci": worker_check_base_ci,
    "check-base-committed": worker_check_base_committed,
    "bare": worker_bare,
    "bare-targets": worker_bare_targets,
}


def run_worker(kind: str, root: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", kind, str(root)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(runs: list[dict]) -> dict:
    runs = sorted(runs, key=lambda r: r["seconds"])
    return runs[len(runs) // 2]


def _median_ratio(tops: list[dict], bottoms: list[dict], key: str = "seconds") -> float:
    """Median of the ratios of runs made back to back: this shared machine's speed drifts
    by tens of percent within minutes, and a drift hits both runs of a pair alike."""
    ratios = sorted(top[key] / bottom[key] for top, bottom in zip(tops, bottoms, strict=False))
    return round(ratios[len(ratios) // 2], 2)


def bench(tenants: int, workdir: Path, repeat: int) -> dict:
    """Median of ``repeat`` runs of each measurement; cold and bare runs interleave so that
    file-system noise hits both sides alike."""
    root = workdir / f"catalog-{tenants}"
    make_catalog(root, tenants)
    colds, bares, bare_targets = [], [], []
    for _ in range(repeat):
        for folder in ("rendered", ".github", ".companyos-cache", "bare", "bare-targets"):
            shutil.rmtree(root / folder, ignore_errors=True)
        colds.append(run_worker("render", root))
        bares.append(run_worker("bare", root))
        bare_targets.append(run_worker("bare-targets", root))
    cold, bare, bare_target = _median(colds), _median(bares), _median(bare_targets)
    # bytes are the same every run (the render is deterministic, the bare loop renders the same calls)
    written = _output_bytes(root)
    noop = _median([run_worker("render", root) for _ in range(repeat)])
    noop_unrecorded = _median([run_worker("render-unrecorded", root) for _ in range(repeat)])
    run_worker("render", root)  # the record again, for the cached check below
    check = _median([run_worker("check", root) for _ in range(repeat)])
    check_full = _median([run_worker("check-full", root) for _ in range(repeat)])
    check_incremental = _median([run_worker("check-incremental", root) for _ in range(repeat)])
    edit_render = _median([run_worker("edit-render", root) for _ in range(repeat)])
    _commit(root)
    check_bases, check_bases_ci = [], []
    for _ in range(repeat):
        run_worker("edit-render", root)  # the pull request: one tenant edited and rendered
        check_bases.append(run_worker("check-base", root))
        check_bases_ci.append(run_worker("check-base-ci", root))
    check_base, check_base_ci = _median(check_bases), _median(check_bases_ci)
    # the pull request merged: a committed tree, proven unchanged by git (output/committed.py);
    # first checked as CI checks the pull request's commit against its base
    _commit(root, "merged")
    check_base_committed = _median([run_worker("check-base-committed", root) for _ in range(repeat)])
    time.sleep(2.5)  # past the folders' racy window
    for _ in range(2):  # the first settles the racy files, the second records git's key
        run_worker("render", root)
    noop_git = _median([run_worker("render", root) for _ in range(repeat)])
    check_git = _median([run_worker("check", root) for _ in range(repeat)])
    # the everyday edit: one tenant changed on a committed, proven tree (git vouches for the rest)
    edit_git = _median([run_worker("edit-render", root) for _ in range(repeat)])
    # and the no-op after it, before any commit (output/since_proof.py: git's proof, the edited unit read)
    noop_edited = _median([run_worker("render", root) for _ in range(repeat)])
    # then committed: git's index rewritten and HEAD moved; the first no-op after it (the proof
    # keeps its own copy of the index, output/committed.py: no walk, no new proof)
    _commit(root, "the edit")
    noop_after_commit = run_worker("render", root)
    return {
        "tenants": tenants,
        "deployments": tenants * 3,
        "files": cold["files"],
        "cold_render_s": round(cold["seconds"], 3),
        "files_written_cold": cold["written"],
        "noop_render_s": round(noop["seconds"], 3),
        "files_written_noop": noop["written"],
        "noop_render_unrecorded_s": round(noop_unrecorded["seconds"], 3),
        "check_s": round(check["seconds"], 3),
        "noop_render_committed_s": round(noop_git["seconds"], 3),
        "check_committed_s": round(check_git["seconds"], 3),
        "noop_committed_rss_mb": round(max(noop_git["rss_mb"], check_git["rss_mb"]), 1),
        "edit_committed_s": round(edit_git["seconds"], 3),
        "edit_committed_rss_mb": round(edit_git["rss_mb"], 1),
        "noop_after_edit_s": round(noop_edited["seconds"], 3),
        "noop_after_commit_s": round(noop_after_commit["seconds"], 3),
        "check_full_s": round(check_full["seconds"], 3),
        "check_incremental_s": round(check_incremental["seconds"], 3),
        "edit_render_s": round(edit_render["seconds"], 3),
        "files_written_edit": edit_render["written"],
        "check_base_s": round(check_base["seconds"], 3),
        "check_base_export_s": round(check_base["export_s"], 3),
        "check_base_ci_s": round(check_base_ci["seconds"], 3),
        "check_base_ci_rss_mb": round(check_base_ci["rss_mb"], 1),
        "check_base_committed_s": round(check_base_committed["seconds"], 3),
        "check_base_committed_rss_mb": round(check_base_committed["rss_mb"], 1),
        "peak_rss_mb": round(max(cold["rss_mb"], noop["rss_mb"], noop_unrecorded["rss_mb"], check["rss_mb"], check_full["rss_mb"]), 1),
        "workers_peak_rss_mb": round(max(r["workers_rss_mb"] for r in (cold, noop, noop_unrecorded, check, check_full)), 1),
        "bare_jinja2_s": round(bare["seconds"], 3),
        "bare_templates_rendered": bare["files"],
        "render_vs_bare": _median_ratio(colds, bares),
        "render_vs_bare_each": [round(c["seconds"] / b["seconds"], 2) for c, b in zip(colds, bares, strict=False)],
        "render_cpu_s": round(cold["cpu_s"], 3),
        "bare_cpu_s": round(bare["cpu_s"], 3),
        "render_vs_bare_cpu": _median_ratio(colds, bares, "cpu_s"),
        # the measure: seconds per MB written, render over bare loop. Of the render's
        # bytes, with and without its unit manifests (bookkeeping the bare loop has none of)
        **{f"{key}_mb": round(size / 2**20, 1) for key, size in written.items()},
        "render_vs_bare_per_mb": round(_median_ratio(colds, bares) * written["bare"] / written["render"], 2),
        "render_vs_bare_per_template_mb": round(
            _median_ratio(colds, bares) * written["bare"] / (written["render"] - written["unit_manifests"]), 2
        ),
        "bare_targets_s": round(bare_target["seconds"], 3),
        "render_vs_bare_targets": _median_ratio(colds, bare_targets),
        "check_vs_render": round(check["seconds"] / cold["seconds"], 2),
        "check_full_vs_render": round(check_full["seconds"] / cold["seconds"], 2),
        "edit_rss_mb": round(edit_render["rss_mb"], 1),
        "check_base_rss_mb": round(check_base["rss_mb"], 1),
        **_bytes_per_tenant(root, tenants),
    }


def _bytes_per_tenant(root: Path, tenants: int) -> dict:
    """Rendered bytes per tenant, all its environments (its unit's files and its unit
    manifest, averaged over the tenants), and the fleet-wide rest; the tenants' bytes by
    kind (``rendered/<kind>/``, the unit manifest apart) and, of them, the generated-file
    headers (the leading comment lines naming the sources): where a cut would come from."""
    units_dir = root / "rendered" / ".companyos-units"
    per_tenant = total = headers = 0
    kinds: dict[str, int] = {}
    for manifest in units_dir.glob("*.json"):
        raw = manifest.read_bytes()
        listed = json.loads(raw)["files"]
        if not manifest.name.startswith("tenant-"):
            total += len(raw) + sum((root / p).stat().st_size for p in listed)
            continue
        kinds["unit manifest"] = kinds.get("unit manifest", 0) + len(raw)
        size = len(raw)
        for path in listed:
            data = (root / path).read_bytes()  # each tenant file read once: its size, its kind, its header
            kind = path.split("/")[1]
            kinds[kind] = kinds.get(kind, 0) + len(data)
            headers += _header_bytes(data)
            size += len(data)
        total += size
        per_tenant += size
    per = max(1, tenants) * 1024
    return {
        "kb_per_tenant": round(per_tenant / per, 1),
        "fleet_wide_mb": round((total - per_tenant) / 2**20, 2),
        "kb_per_tenant_by_kind": {kind: round(size / per, 1) for kind, size in sorted(kinds.items(), key=lambda item: -item[1])},
        "kb_per_tenant_headers": round(headers / per, 1),
    }


def _header_bytes(data: bytes) -> int:
    """The bytes of a generated file's header (``emit.header``: the "Generated by" line and
    the "Sources:" line after it, in any comment leader); 0 for a file without one (JSON)."""
    first, _, rest = data.partition(b"\n")
    if b" Generated by companyos" not in first:
        return 0
    second, newline, _ = rest.partition(b"\n")
    return len(first) + 1 + (len(second) + len(newline) if b" Sources: " in second else 0)


def _output_bytes(root: Path) -> dict[str, int]:
    """Bytes written: the render's files (rendered/ and the workflows), of them the unit manifests,
    and the bare loop's files. A per-MB ratio compares the same work: the render writes files
    no template makes (JSON it emits, its manifests), the bare loop only templates' output."""

    def size(*folders: Path) -> int:
        return sum(entry.stat().st_size for folder in folders for entry in folder.rglob("*") if entry.is_file())

    return {
        "render": size(root / "rendered", root / ".github" / "workflows"),
        "unit_manifests": size(root / "rendered" / ".companyos-units"),
        "bare": size(root / "bare"),
    }


def markdown(rows: list[dict]) -> str:
    head = (
        "| tenants x envs | files | written cold / no-op | cold render s | no-op render s (without the record) | check s (cache) | check --full s | peak RSS MB (its largest worker) "
        "| bare jinja2 s | render / bare (each run) | per MB written: all / without unit manifests (MB: render, of it manifests, bare) | render / bare, CPU s | bare targets s | render / bare targets "
        "| check / render | check --full / render | check, no cache s | one-tenant edit: render s (written) "
        "| one-tenant PR: check --base s (of it, git export s) / no local cache s / --committed, as CI runs it s | peak RSS MB: edit / check --base / no cache / --committed | rendered KB per tenant (all envs) / fleet-wide MB "
        "| committed tree: no-op render s / check s (peak RSS MB) | committed tree: one-tenant edit render s (peak RSS MB) / no-op after it s / first no-op after its commit s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        each = ", ".join(str(x) for x in r["render_vs_bare_each"])
        lines.append(
            f"| {r['tenants']} x 3 | {r['files']} | {r['files_written_cold']} / {r['files_written_noop']} | {r['cold_render_s']} | {r['noop_render_s']} ({r['noop_render_unrecorded_s']}) | {r['check_s']} | "
            f"{r['check_full_s']} | {r['peak_rss_mb']} ({r['workers_peak_rss_mb']}) | {r['bare_jinja2_s']} | **{r['render_vs_bare']}** ({each}) | "
            f"{r['render_vs_bare_per_mb']} / {r['render_vs_bare_per_template_mb']} ({r['render_mb']}, {r['unit_manifests_mb']}, {r['bare_mb']}) | "
            f"{r['render_cpu_s']} / {r['bare_cpu_s']} = {r['render_vs_bare_cpu']} | {r['bare_targets_s']} | "
            f"{r['render_vs_bare_targets']} | {r['check_vs_render']} | {r['check_full_vs_render']} | "
            f"{r['check_incremental_s']} | {r['edit_render_s']} ({r['files_written_edit']}) | {r['check_base_s']} ({r['check_base_export_s']}) / {r['check_base_ci_s']} / **{r['check_base_committed_s']}** | "
            f"{r['edit_rss_mb']} / {r['check_base_rss_mb']} / {r['check_base_ci_rss_mb']} / {r['check_base_committed_rss_mb']} | {r['kb_per_tenant']} / {r['fleet_wide_mb']} | "
            f"{r['noop_render_committed_s']} / {r['check_committed_s']} ({r['noop_committed_rss_mb']}) | "
            f"{r['edit_committed_s']} ({r['edit_committed_rss_mb']}) / {r['noop_after_edit_s']} / {r['noop_after_commit_s']} |"
        )
    for r in rows:
        kinds = ", ".join(f"{kind} {kb}" for kind, kb in r["kb_per_tenant_by_kind"].items())
        lines.append(f"\n{r['tenants']} x 3, rendered KB per tenant by kind: {kinds} (headers {r['kb_per_tenant_headers']} of them)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the generated catalogs")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--workdir", type=Path, default=None, help="where to build the catalogs (e.g. /dev/shm to take disk noise out)")
    parser.add_argument("--jobs", type=int, default=None, help="render processes (sets COMPANYOS_JOBS; default: one per core)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("root", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.jobs is not None:
        os.environ["COMPANYOS_JOBS"] = str(args.jobs)  # inherited by every worker process
    if args.worker:
        # Every worker, the bare loops included, runs as the console script does
        # (generator.cli.main.entry): the cyclic garbage collector off for the process.
        gc.disable()
        print(json.dumps(WORKERS[args.worker](Path(args.root))))
        return
    workdir = Path(tempfile.mkdtemp(prefix="companyos-bench-", dir=args.workdir))
    try:
        rows = []
        for size in args.sizes:
            row = bench(size, workdir, args.repeat)
            rows.append(row)
            if not args.markdown:
                print(json.dumps(row), flush=True)
        if args.markdown:
            print(markdown(rows))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
