"""Rendering on several processes gives exactly the bytes of a serial render."""

from __future__ import annotations

import dataclasses
import os
import pickle
import sys
from pathlib import Path

import pytest

from generator import pipeline
from generator.output import forked, parallel
from generator.output.render import EntryField, render
from helpers.repo import REPO

sys.path.insert(0, str(REPO / "bench"))
import run as bench  # bench/run.py: the benchmark's catalog generator


@pytest.fixture(scope="module")
def large_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("large") / "repo"
    bench.make_catalog(root, 40)
    model = pipeline.resolve_only(root)
    assert len(model.deployments) >= parallel.MIN_DEPLOYMENTS
    return model


def test_parallel_render_is_byte_identical(large_model):
    assert parallel.usable(large_model, 2)
    serial = render(large_model, jobs=1)
    assert render(large_model, jobs=2).files == serial.files
    assert render(large_model, jobs=3).files == serial.files


def test_every_per_environment_unit_sees_only_its_environment(large_model):
    from generator.targets import TARGETS

    work = parallel.units(large_model, TARGETS)
    envs = [e.name for e in large_model.environments]
    per_env = [t for t in TARGETS if getattr(t, "PER_ENVIRONMENT", False)]
    assert len(work) == len(per_env) * len(envs) + (len(TARGETS) - len(per_env))
    for env in envs:
        scoped = parallel.restrict(large_model, env)
        assert {d.env for d in scoped.deployments} == {env}


def _slice(model, names):
    """``model`` seen from several environments at once: a coarser split than the workers'."""
    return dataclasses.replace(
        model,
        environments=tuple(e for e in model.environments if e.name in names),
        deployments=tuple(d for d in model.deployments if d.env in names),
    )


def _partitionings(envs):
    """The workers' split (one environment each) and coarser ones: in order, out of order
    (the first with the last, so a slice never holds a neighbour), and the whole chain."""
    yield "per environment", [[e] for e in envs]
    yield "first two + rest", [envs[:2], envs[2:]]
    yield "first + rest", [envs[:1], envs[1:]]
    yield "interleaved", [envs[0::2], envs[1::2]]


def test_per_environment_files_do_not_depend_on_the_partition(large_model):
    """Every PER_ENVIRONMENT target's records (path, bytes, sources, tenant, root, contracts)
    are the same whichever slices of environments it renders: cross-environment facts (the
    next environment's ECR puller in registry.tf, production's CloudFront Origin Shield in a
    tenant's main.tf) must come from the whole model, never from the worker's slice."""
    from generator.formats.templating import Templates
    from generator.targets import TARGETS

    templates = Templates(large_model.templates)
    envs = [e.name for e in large_model.environments]
    assert len(envs) >= 3  # else "first two + rest" etc. would not split anything
    whole = {}
    for target in TARGETS:
        if not getattr(target, "PER_ENVIRONMENT", False):
            continue
        full = {f.path: f for f in target.render(large_model, templates)}
        whole.update(full)
        for label, parts in _partitionings(envs):
            assert sorted(e for part in parts for e in part) == sorted(envs)
            pieces = [parallel.restrict(large_model, p[0]) if len(p) == 1 else _slice(large_model, set(p)) for p in parts]
            split = {f.path: f for piece in pieces for f in target.render(piece, templates)}
            differing = sorted(p for p in full.keys() | split.keys() if full.get(p) != split.get(p))
            assert not differing, f"{target.NAME}, split {label}: {differing[:10]}"
    # the two facts that once differed are really in what was compared
    registries = [f.text for p, f in whole.items() if p.endswith("/shared/registry.tf")]
    assert sum("PromoteToNextEnvironment" in t for t in registries) == len(envs) - 1
    shielded = {f.environment for p, f in whole.items() if p.endswith("/main.tf") and "origin_shield" in f.text}
    assert shielded == {envs[-1]}


def test_worker_errors_keep_their_locations():
    import pickle

    from generator.errors import CatalogError, CatalogErrors, Location

    original = CatalogErrors([CatalogError(Location("templates/x.j2", 3, 1), "boom")])
    copy = pickle.loads(pickle.dumps(original))
    assert copy.errors == original.errors and str(copy) == str(original)


def test_benchmark_runs_end_to_end_and_compares_like_with_like(tmp_path):
    """The benchmark itself must not rot: one small run, every figure present, the cold
    render writes every file and the no-op none, and the bare loop renders exactly the
    templates the render did (every file but the manifest). No timing is asserted."""
    import json
    import subprocess

    out = subprocess.run(
        [sys.executable, str(Path(bench.__file__)), "--sizes", "10", "--repeat", "1", "--keep", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    row = json.loads(out.strip().splitlines()[-1])
    assert row["files_written_cold"] == row["files"] and row["files_written_noop"] == 0
    # the bare loop renders exactly the (template, context) calls a real render makes
    from generator import pipeline
    from generator.formats import templating

    (catalog,) = tmp_path.glob("companyos-bench-*/catalog-10")
    calls = 0
    real = templating.Templates.render

    def counting(self, name, **context):
        nonlocal calls
        calls += 1
        return real(self, name, **context)

    templating.Templates.render = counting
    try:
        pipeline.build(catalog, jobs=1)
    finally:
        templating.Templates.render = real
    assert row["bare_templates_rendered"] == calls > 0
    for key in (
        "cold_render_s",
        "noop_render_s",
        "check_s",
        "check_full_s",
        "bare_jinja2_s",
        "bare_targets_s",
        "peak_rss_mb",
        "render_cpu_s",
        "check_base_s",
        "check_base_ci_s",
        "check_base_committed_s",
    ):
        assert row[key] > 0, key
    # the CI-like check --base set the local cache aside and put it back
    assert (catalog / ".companyos-cache").is_dir() and not (catalog / ".companyos-cache.aside").exists()
    assert row["workers_peak_rss_mb"] >= 0  # 10 tenants render in one process: its only children are git's
    assert len(row["render_vs_bare_each"]) == 1
    # the bytes per tenant by kind add up to the total, and the headers are a part of them
    by_kind = row["kb_per_tenant_by_kind"]
    assert {"terraform", "argocd", "helm", "unit manifest"} <= set(by_kind)
    assert sum(by_kind.values()) == pytest.approx(row["kb_per_tenant"], abs=0.1 * len(by_kind))
    assert 0 < row["kb_per_tenant_headers"] < by_kind["terraform"]
    # per MB: the render writes more than the bare loop (emitted JSON, its unit manifests), so
    # its per-MB ratio is below its plain one, and below that without the manifests counted
    assert row["render_mb"] > row["render_mb"] - row["unit_manifests_mb"] > row["bare_mb"] > 0
    assert row["render_vs_bare_per_mb"] <= row["render_vs_bare_per_template_mb"] <= row["render_vs_bare"]
    # --keep kept the catalog (read above); without it the bench removes its folder
    assert [p.name for p in catalog.parent.iterdir()] == ["catalog-10"]


def _unit_manifests(result) -> dict[str, bytes]:
    """Every unit's manifest as ``units.assemble`` would record it (contracts and places included)."""
    from generator.output import units

    members: dict[str, dict] = {}
    for path, entry in result.manifest["files"].items():
        members.setdefault(units.unit_of(entry), {})[path] = entry
    declared = {d[0]: d for d in result.declared}
    return {
        unit: units.unit_manifest(unit, "inputs", listed, {p: declared[p] for p in listed if p in declared})
        for unit, listed in members.items()
    }


def test_a_parallel_renders_contracts_wait_in_its_spool_and_are_the_serial_ones(large_model):
    """The workers spill each file's contracts to the render's spool (none held by the render:
    ~100 MB at 1,000 tenants); read back they are the serial render's, the unit manifests
    that record them are byte for byte the same, and the fleet's check reads them."""
    from generator.output import contracts

    serial = render(large_model, jobs=1)
    spooled = render(large_model, jobs=2)
    assert all(isinstance(d[1], contracts.SpooledContracts) and isinstance(d[2], contracts.SpooledContracts) for d in spooled.declared)
    assert not any(isinstance(d[1], contracts.SpooledContracts) for d in serial.declared)

    def plain(result):
        return [(path, tuple(provides), tuple(consumes), first) for path, provides, consumes, first in result.declared]

    assert plain(spooled) == plain(serial) and len(plain(serial)) > 100
    assert _unit_manifests(spooled) == _unit_manifests(serial)
    assert contracts.links(spooled.declared) == contracts.links(serial.declared)
    # a consumer no one answers, planted in the spooled contracts: found as in the serial ones
    path, _, consumes, first = next(d for d in serial.declared if d[2])
    broken = consumes[0]._replace(name="nobody-provides-this")
    planted = [d if d[0] != path else (path, d[1], (*d[2], broken), first) for d in spooled.declared]
    errors = contracts.check_by_unit(planted, lambda: iter(()))
    assert errors and errors == contracts.check(
        plain(serial)[:0] + [d if d[0] != path else (path, d[1], (*d[2], broken), first) for d in plain(serial)]
    )


def test_a_parallel_render_judges_every_limit_fact_a_serial_one_has(large_model, monkeypatch):
    """The workers send back no Facts with nothing in them (~9 files in 10): the limit check
    still gets every fact that can breach, matrix or apply server-side, in the same order."""
    from generator.output import limits

    seen: list[list[limits.Facts]] = []
    real = limits.judge
    monkeypatch.setattr(limits, "judge", lambda model, found, *rest: seen.append(list(found)) or real(model, found, *rest))
    render(large_model, jobs=1)
    render(large_model, jobs=2)
    serial, spread = seen
    assert spread == [f for f in serial if limits.record(f) is not None]
    assert spread and len(spread) < len(serial)


@pytest.fixture(scope="module")
def large_repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("chunked") / "repo"
    bench.make_catalog(root, 40)
    return root, pipeline.resolve_only(root)


def _chunked(root, model, monkeypatch, size=7):
    """A cold render of the whole catalog through the unit planner, ``size`` tenants a chunk."""
    from generator.output import render as render_module
    from generator.output import units

    monkeypatch.setattr(render_module, "CHUNK_TENANTS", size)
    found = units.digests(root, model)
    result, todo = units.render_incremental(model, root, found, lambda unit: None, jobs=2)
    return result, todo, found


def test_units_come_chunk_after_chunk():
    from generator.targets import TARGETS

    class Model:
        environments = (type("E", (), {"name": "dev"}), type("E", (), {"name": "prod"}))

    once = parallel.units(Model, TARGETS)
    chunked = parallel.units(Model, TARGETS, 3)
    assert [u[2] for u in once] == [None] * len(once)
    assert chunked == [(index, env, chunk) for chunk in range(3) for index, env, _ in once]


def test_a_large_render_made_chunk_by_chunk_is_byte_for_byte_the_serial_one(large_repo, monkeypatch):
    """Seven tenants a chunk (six chunks, the fleet-wide files in the first): every file,
    unit manifests included, is the serial render's, every sha256 and every unit's listing."""
    from generator.output import units

    root, model = large_repo
    result, todo, found = _chunked(root, model, monkeypatch)
    serial, _ = units.render_incremental(model, root, found, lambda unit: None, jobs=1)  # one pass, one process
    assert dict(result.files.items()) == dict(serial.files.items())
    assert list(result.files) == sorted(result.files) == list(serial.files)  # in path order, as the serial result
    # every tenant's files' places packed beside its unit's paths; only the fleet-wide files
    # and the unit manifests kept in a map (output.places)
    from generator.output.places import Places
    from generator.output.spool import stored_of

    stored, _ = stored_of(result.files)
    assert isinstance(stored, Places)
    tenant_files = [p for p, e in result.manifest["files"].items() if e.get("tenant") and not p.startswith(units.UNITS_DIR + "/")]
    assert len(stored._loose) == len(result.files) - len(tenant_files)
    # each tenant's entries kept as shared records (output.slim_entry), each equal to the serial
    # render's dict less the fields read from its unit's manifest when asked
    from generator.output.slim_entry import SlimEntry

    made = [result.manifest["files"][p] for p in tenant_files]
    assert all(isinstance(e, SlimEntry) for e in made) and len({id(e) for e in made}) < len(made)
    assert all(
        result.manifest["files"][p] == {k: v for k, v in serial.manifest["files"][p].items() if k not in ("sha256", "sources")}
        for p in tenant_files
    )
    assert len(units.unit_paths(result.files)) == len(model.catalog.tenants) + 1
    assert dict(result.shas()) == dict(serial.shas())
    assert {path: sorted(paths) for path, paths in (result.members or {}).items()} == {
        path: sorted(paths) for path, paths in units.membership(serial).items()
    }
    assert sorted(todo.fresh) == sorted(p for p in serial.files if not p.startswith(units.UNITS_DIR + "/"))
    assert not todo.reused  # the plan's own reused units: none (what it made is not on disk)
    # sent to another process (the spool does not travel): the same files, sha256s and sources
    back = pickle.loads(pickle.dumps(result))
    assert dict(back.files.items()) == dict(serial.files.items()) and dict(back.shas()) == dict(serial.shas())
    path = next(p for p, e in serial.manifest["files"].items() if e.get("tenant") and "/.companyos" not in p)
    assert EntryField(back.manifest["files"], "sources", recorded=back.recorded)[path] == serial.manifest["files"][path]["sources"]


def test_a_chunked_render_holds_only_the_chunk_at_hand_whole(large_repo, monkeypatch):
    """While a chunk is taken, no earlier tenant's file keeps its full record (sha256,
    sources): each tenant's unit was made and its entries replaced by the slim, decoded ones."""
    from generator.output import units

    seen: dict[str, object] = {}
    real_made, real_by_tenant = units._render_by_tenant, units.render_by_tenant

    def made(model, found, tenants, jobs, entries, spool, progress=None):
        seen["entries"] = entries
        return real_made(model, found, tenants, jobs, entries, spool, progress)

    whole_at_each_tenant = []

    def by_tenant(*args, **kwargs):
        for tenant, items in real_by_tenant(*args, **kwargs):
            entries = seen["entries"]
            whole_at_each_tenant.append(sum(1 for e in entries.values() if "sha256" in e and e.get("tenant") is not None))
            yield tenant, items

    monkeypatch.setattr(units, "_render_by_tenant", made)
    monkeypatch.setattr(units, "render_by_tenant", by_tenant)
    root, model = large_repo
    result, _, _ = _chunked(root, model, monkeypatch)
    assert len(whole_at_each_tenant) == len(model.catalog.tenants) + 1  # the fleet-wide files, then each tenant
    assert whole_at_each_tenant == [0] * len(whole_at_each_tenant)
    tenant_entries = [entry for path, entry in result.manifest["files"].items() if entry.get("tenant") and "/.companyos" not in path]
    assert all("sha256" not in entry for entry in tenant_entries)
    # entries equal field for field are one dict, as a reused unit's (units._all_of)
    assert len({id(entry) for entry in tenant_entries}) < len(tenant_entries) / 2


def test_a_chunked_render_finds_a_broken_contract_as_the_serial_one_does(large_repo, monkeypatch):
    """A consumer nobody answers, planted in a tenant of the last chunk (its contracts are read
    back from its unit manifest in the spool): the same errors as the serial render's check."""
    from generator.errors import CatalogErrors
    from generator.output import render as render_module

    root, model = large_repo
    last = sorted(model.catalog.tenants)[-1]
    clean = render(model, jobs=1)
    victim = next(d[0] for d in clean.declared if d[2] and clean.entry(d[0]).get("tenant") == last)
    real = render_module.finalize

    def planted(target, item, **kwargs):
        path, data, entry, declared, facts = real(target, item, **kwargs)
        if path == victim:
            declared = (path, declared[1], (*declared[2], declared[2][0]._replace(name="nobody-provides-this")), declared[3])
        return path, data, entry, declared, facts

    monkeypatch.setattr(render_module, "finalize", planted)
    with pytest.raises(CatalogErrors) as serial:
        render(model, jobs=1)
    with pytest.raises(CatalogErrors) as chunked:
        _chunked(root, model, monkeypatch)
    assert chunked.value.errors == serial.value.errors
    assert any("nobody-provides-this" in str(e) for e in serial.value.errors)


def test_workers_collect_cycles_though_the_console_script_turns_the_collector_off(large_model, monkeypatch):
    """``cli.main.entry`` runs with the cyclic collector off; the render's templates leave
    cycles (Jinja's macros and template modules), so every worker turns it back on: left off,
    each render worker grew to ~2 GB at 10,000 tenants x 3. Asked in the workers themselves,
    through the finishing step they run for each file, and in an ``apart`` worker."""
    import gc

    from generator.output import render as render_module

    real = render_module.finalize

    def finalize_noting_the_collector(target, item, **kw):
        path, data, entry, declared, facts = real(target, item, **kw)
        return path, data, {**entry, "collector": (os.getpid(), gc.isenabled())}, declared, facts

    monkeypatch.setattr(render_module, "finalize", finalize_noting_the_collector)
    was = gc.isenabled()
    gc.disable()
    try:
        result = render(large_model, jobs=2, check=False)
        with forked.apart(gc.isenabled, wanted=True) as apart_collects:
            pass_collects = apart_collects()
    finally:
        if was:
            gc.enable()
    noted = {entry["collector"] for entry in result.manifest["files"].values()}
    assert {pid for pid, _ in noted} - {os.getpid()}, "no file was finished in a worker"
    assert all(on for _, on in noted), "a render worker ran with the collector off"
    assert pass_collects is True
