"""The verified-clean cache: `check` skips rendering only when nothing that could change the
answer changed, and any change at all sends it back to a full render."""

from __future__ import annotations

from pathlib import Path

import pytest

import generator
from generator import pipeline
from generator.output import checkcache
from generator.output.checkcache import CACHE_PATH
from helpers.catalog_edit import edit_yaml
from helpers.gitrepo import commit_all
from helpers.repo import REPO


@pytest.fixture
def rendered_repo(repo, companyos):
    assert companyos("render", cwd=repo).code == 0
    assert (repo / CACHE_PATH).is_file()
    return repo


def no_render(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("check rendered although the tree was verified clean")

    # check renders through either path: the full build or the incremental one (build_incremental)
    monkeypatch.setattr(pipeline, "build", refuse)
    monkeypatch.setattr(pipeline, "build_incremental", refuse)


def count_renders(monkeypatch) -> list[int]:
    """Let ``pipeline.build`` and ``pipeline.build_incremental`` run, and record each call
    (one entry per check that rendered: the cache short-circuits both)."""
    calls: list[int] = []
    real, real_incremental = pipeline.build, pipeline.build_incremental
    monkeypatch.setattr(pipeline, "build", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(pipeline, "build_incremental", lambda *a, **k: calls.append(1) or real_incremental(*a, **k))
    return calls


def test_unchanged_tree_checks_without_rendering(rendered_repo, companyos, monkeypatch):
    no_render(monkeypatch)
    result = companyos("check", cwd=rendered_repo)
    assert result.code == 0 and "files match the catalog" in result.out


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: edit_yaml(r / "tenants/globex.yaml", lambda d: d.__setitem__("cost_center", "CC-2999")), id="catalog"),
        pytest.param(
            lambda r: (r / "templates/helm/values.yaml.j2").write_text((r / "templates/helm/values.yaml.j2").read_text() + "# x\n"),
            id="template",
        ),
        pytest.param(lambda r: (r / "rendered/helm/dev/globex/api.yaml").write_text("edited: true\n"), id="hand-edited output"),
        pytest.param(lambda r: (r / "rendered/helm/dev/stray.yaml").write_text("a: 1\n"), id="unmanaged file"),
        pytest.param(lambda r: (r / "rendered/helm/dev/globex/api.yaml").unlink(), id="deleted output"),
    ],
)
def test_any_change_forces_a_full_check(rendered_repo, companyos, monkeypatch, change):
    change(rendered_repo)
    calls = count_renders(monkeypatch)
    assert companyos("check", cwd=rendered_repo).code == 1
    assert calls, "check answered from the cache"


@pytest.mark.parametrize(
    "module",
    # one module of each pipeline stage: editing any of them can change the render's bytes
    [
        "pipeline.py",
        "catalog/spec.py",
        "model/layers.py",
        "policy/evaluate.py",
        "targets/helm.py",
        "targets/terraform/hcl.py",
        "output/render.py",
    ],
)
def test_generator_code_is_part_of_the_key(rendered_repo, monkeypatch, module):
    source = Path(generator.__file__).resolve().parent / module
    assert source.is_file(), source
    before = checkcache.inputs_digest(rendered_repo)
    real = checkcache.read_file

    def edited(path: str) -> bytes:
        data = real(path)
        return data + b"\n# edited\n" if Path(path).resolve() == source else data

    monkeypatch.setattr(checkcache, "read_file", edited)  # the module "edited" on disk
    assert checkcache.inputs_digest(rendered_repo) != before


def test_output_library_versions_are_part_of_the_key(rendered_repo, monkeypatch):
    before = checkcache.inputs_digest(rendered_repo)
    monkeypatch.setattr(checkcache, "OUTPUT_LIBRARIES", (*checkcache.OUTPUT_LIBRARIES, "jsonschema"))
    assert checkcache.inputs_digest(rendered_repo) != before


def test_full_flag_ignores_the_cache(rendered_repo, companyos, monkeypatch):
    calls = count_renders(monkeypatch)
    assert companyos("check", "--full", cwd=rendered_repo).code == 0
    assert calls, "check --full answered from the cache"


def test_base_ignores_the_cache(rendered_repo, companyos, monkeypatch):
    commit_all(rendered_repo, "base")  # --base needs a git ref to compare with
    calls = count_renders(monkeypatch)
    result = companyos("check", "--base", "HEAD", cwd=rendered_repo)
    assert result.code == 0, result.err
    assert calls, "check --base answered from the cache"


def test_corrupt_cache_is_ignored(rendered_repo, companyos):
    (rendered_repo / CACHE_PATH).write_text("{not json")
    assert companyos("check", cwd=rendered_repo).code == 0


# --- the stat record: nothing is read when nothing was written since ----------------------


def _same_size_edit(path: Path) -> None:
    """Change one byte in place, keeping the size and the modification time (what a stat
    cache keyed on mtime alone would miss; ctime moves and cannot be set back)."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-2] = ord("x") if data[-2] != ord("x") else ord("y")
    path.write_bytes(bytes(data))
    import os

    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def _record(repo: Path, monkeypatch, racy_ns: int) -> dict:
    import json

    monkeypatch.setattr(checkcache, "RACY_NS", racy_ns)
    assert pipeline.check(repo, use_cache=False)[1].clean  # a full check that records the tree
    return json.loads((repo / CACHE_PATH).read_text())


def test_an_old_tree_is_trusted_by_stat_and_reads_no_output(rendered_repo, monkeypatch):
    record = _record(rendered_repo, monkeypatch, racy_ns=0)
    assert record["racy"] == {} and record["stat"] and ".github/workflows/render-check.yml" in record["extra"]
    monkeypatch.setattr(checkcache, "_read_sum", lambda *a, **k: (_ for _ in ()).throw(AssertionError("hashed the outputs")))
    monkeypatch.setattr(checkcache, "inputs_digest", lambda root: record["inputs"])
    no_render(monkeypatch)
    assert checkcache.known_clean(rendered_repo) == record["files"]


def test_a_racy_record_is_settled_by_the_next_no_op_from_its_own_walk(rendered_repo, companyos, monkeypatch):
    """A record taken while every output was racy keeps them by content; the next no-op
    settles them from the very ``lstat``s its walk took (no second pass over every file),
    and what it records is what a plain stat record of the tree is."""
    import json

    record = _record(rendered_repo, monkeypatch, racy_ns=10**15)  # everything just written
    assert record["racy"] and len(record["racy"]) == record["files"]
    monkeypatch.setattr(checkcache, "RACY_NS", 0)  # old enough now
    monkeypatch.setattr(checkcache, "inputs_digest", lambda root: record["inputs"])
    real = checkcache._lstat_each
    monkeypatch.setattr(checkcache, "_lstat_each", lambda *a: (_ for _ in ()).throw(AssertionError("stat'ed every file again")))
    no_render(monkeypatch)
    assert checkcache.known_clean(rendered_repo) == record["files"]
    settled = json.loads((rendered_repo / CACHE_PATH).read_text())
    monkeypatch.setattr(checkcache, "_lstat_each", real)
    plain = checkcache._plain_stat_record(rendered_repo, checkcache._output_paths(rendered_repo))
    assert settled["racy"] == {} and settled["stat"] == plain["stat"] and settled["extra"] == plain["extra"]
    _same_size_edit(rendered_repo / "rendered/helm/dev/globex/api.yaml")  # the settled record is a real one
    assert checkcache.known_clean(rendered_repo) is None


@pytest.mark.parametrize("racy_ns", [0, 10**15], ids=["trusted by stat", "racy: hashed"])
def test_a_same_size_edit_keeping_mtime_is_caught(rendered_repo, companyos, monkeypatch, racy_ns):
    record = _record(rendered_repo, monkeypatch, racy_ns)
    assert bool(record["racy"]) is (racy_ns > 0)
    _same_size_edit(rendered_repo / "rendered/helm/dev/globex/api.yaml")
    calls = count_renders(monkeypatch)
    assert companyos("check", cwd=rendered_repo).code == 1
    assert calls, "check answered from the cache"


def test_a_racy_file_changed_before_the_record_is_not_recorded_as_clean(rendered_repo, companyos, monkeypatch):
    """Every file just written is racy: the record keeps the sha256 the render wrote it with,
    without reading it back. A file changed between the write and the record (an editor, a
    formatter) therefore fails the next check instead of being recorded as what the tree
    should hold; and the 80,000 files of a cold render at 1,000 tenants are not read again."""
    monkeypatch.setattr(checkcache, "RACY_NS", 10**15)  # everything racy
    edited = rendered_repo / "rendered/helm/dev/globex/api.yaml"
    real = checkcache.remember_clean

    def edit_first(*args, **kwargs):
        _same_size_edit(edited)  # after the write, before the record
        return real(*args, **kwargs)

    monkeypatch.setattr(checkcache, "remember_clean", edit_first)
    hashed: list[str] = []
    real_sha = checkcache._sha
    monkeypatch.setattr(checkcache, "_sha", lambda path: hashed.append(path) or real_sha(path))
    edit_yaml(rendered_repo / "tenants/globex.yaml", lambda data: data.update(owner="platform-b@example.com"))
    assert companyos("render", "--full", cwd=rendered_repo).code == 0
    assert not [p for p in hashed if "/rendered/" in p], "the record read back what was written"
    monkeypatch.setattr(checkcache, "remember_clean", real)
    calls = count_renders(monkeypatch)
    assert companyos("check", cwd=rendered_repo).code == 1
    assert calls, "check answered from the cache"


def test_render_with_nothing_changed_renders_nothing_and_a_hand_edit_is_still_undone(rendered_repo, companyos, monkeypatch):
    _record(rendered_repo, monkeypatch, racy_ns=0)
    real = pipeline.render_to_disk
    monkeypatch.setattr(pipeline, "render_to_disk", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rendered")))
    result = companyos("render", cwd=rendered_repo)
    assert result.code == 0 and "nothing rendered" in result.out, result.out + result.err
    target = rendered_repo / "rendered/helm/dev/globex/api.yaml"
    before = target.read_bytes()
    _same_size_edit(target)
    monkeypatch.setattr(pipeline, "render_to_disk", real)
    result = companyos("render", cwd=rendered_repo)
    assert result.code == 0 and "1 written" in result.out, result.out
    assert target.read_bytes() == before


# --- per-unit stat digests: an edit reuses the other units without reading their files ------------


def _reads(monkeypatch) -> list[str]:
    """Every file the unit plan reads (``units.read_file``), as given."""
    from generator.output import units

    seen: list[str] = []
    real = units.read_file

    def reading(path, *args, **kwargs):
        seen.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(units, "read_file", reading)
    return seen


def test_an_edit_reuses_every_vouched_unit_without_reading_its_files(rendered_repo, monkeypatch):
    record = _record(rendered_repo, monkeypatch, racy_ns=0)
    assert "rendered/.companyos-units/tenant-globex.json" in record["units"]
    edit_yaml(rendered_repo / "tenants/hooli.yaml", lambda data: data.update(owner="platform-b@example.com"))
    seen = _reads(monkeypatch)
    built, report = pipeline.render_to_disk(rendered_repo)
    others = [p for p in seen if "/rendered/" in p and "/.companyos-units/" not in p]
    assert not others, f"the plan read {len(others)} files of vouched units, e.g. {others[:3]}"
    assert report.written and all("hooli" in p for p in report.written), report.written
    # The files left on disk read back as a full render produces them.
    full = pipeline.build(rendered_repo).result.files
    assert dict(built.result.files) == dict(full)
    assert pipeline.check(rendered_repo)[1].clean


def test_an_edits_record_carries_the_other_units_sums_and_equals_a_fresh_one(rendered_repo, monkeypatch):
    """The record after a one-tenant edit stats only what was not vouched for (the edited and
    the global unit): every other unit's stat and content sums are carried, and the tree's
    sums made from them are exactly what a full check records from scratch."""
    import json

    from generator.output import units

    _record(rendered_repo, monkeypatch, racy_ns=0)
    edit_yaml(rendered_repo / "tenants/hooli.yaml", lambda data: data.update(owner="platform-b@example.com"))
    summed: list[str] = []
    recording: list[bool] = []
    real, remember = checkcache._stat_item, checkcache.remember_clean

    def summing(rel, st):
        if recording:  # the plan sums each unit it vouches for; the record must not again
            summed.append(rel)
        return real(rel, st)

    def remembering(*args, **kwargs):
        recording.append(True)
        return remember(*args, **kwargs)

    monkeypatch.setattr(checkcache, "_stat_item", summing)
    monkeypatch.setattr(checkcache, "remember_clean", remembering)
    built, _ = pipeline.render_to_disk(rendered_repo)
    carried = json.loads((rendered_repo / CACHE_PATH).read_text())
    members = units.membership(built.result)
    allowed = {p for unit in ("global", "tenant/hooli") for p in [units.unit_path(unit), *members[units.unit_path(unit)]]}
    assert summed and set(summed) <= allowed, sorted(set(summed) - allowed)[:5]
    monkeypatch.setattr(checkcache, "_stat_item", real)
    fresh = _record(rendered_repo, monkeypatch, racy_ns=0)  # a full check, every file stat'ed and summed
    for key in ("stat", "outputs", "units", "contents", "racy", "fleet", "files"):
        assert carried[key] == fresh[key], key
    assert len(carried["units"]) == len(members)


def test_a_same_size_edit_in_a_vouched_unit_is_read_and_undone(rendered_repo, monkeypatch):
    _record(rendered_repo, monkeypatch, racy_ns=0)
    target = rendered_repo / "rendered/helm/dev/globex/api.yaml"
    before = target.read_bytes()
    _same_size_edit(target)  # ctime moved: globex's stat digest no longer matches
    edit_yaml(rendered_repo / "tenants/hooli.yaml", lambda data: data.update(owner="platform-b@example.com"))
    _, report = pipeline.render_to_disk(rendered_repo)
    assert "rendered/helm/dev/globex/api.yaml" in report.written
    assert target.read_bytes() == before


def test_check_without_the_cache_reads_every_reused_file(rendered_repo, monkeypatch):
    _record(rendered_repo, monkeypatch, racy_ns=0)
    edit_yaml(rendered_repo / "tenants/hooli.yaml", lambda data: data.update(owner="platform-b@example.com"))
    seen = _reads(monkeypatch)
    assert pipeline.check(rendered_repo, use_cache=False, full=False)[1].changed  # hooli's files are out of date
    assert any("/rendered/helm/dev/globex/" in p for p in seen), "an uncached check trusted the stat record"


# --- the verified fleet: an edit's contract check judges only what changed ------------------------


def _full_checks(monkeypatch) -> list[int]:
    """One entry per fleet-wide contract check (``contracts.check_by_unit`` over every unit)."""
    from generator.output import contracts, units

    calls: list[int] = []
    real = contracts.check_by_unit
    monkeypatch.setattr(units.contracts, "check_by_unit", lambda shared, each: calls.append(1) or real(shared, each))
    return calls


def _contracts_read(monkeypatch) -> list[str]:
    """The units whose recorded contracts are read (``units.Unit.declared``)."""
    import msgspec

    from generator.output import units

    seen: list[str] = []
    real = units._CONTRACTS

    class Spy:
        def decode(self, raw: bytes) -> object:
            seen.append(msgspec.json.decode(raw)["unit"])
            return real.decode(raw)

    monkeypatch.setattr(units, "_CONTRACTS", Spy())
    return seen


def test_an_edit_holds_no_vouched_units_manifest_and_checks_it_when_read_again(rendered_repo, monkeypatch):
    """A vouched unit's manifest bytes are let go once parsed (the tree holds them: at
    10,000 tenants ~740 MB); its entry's sha256 is the one taken then, and read again for
    its contracts, bytes that changed since are refused, not trusted."""
    import hashlib

    from generator.errors import UsageError
    from generator.output import units

    _record(rendered_repo, monkeypatch, racy_ns=0)
    edit_yaml(rendered_repo / "tenants/hooli.yaml", lambda data: data.update(owner="platform-b@example.com"))
    built, plan = pipeline.build_incremental(rendered_repo)
    globex, acme = units.unit_path("tenant/globex"), units.unit_path("tenant/acme")
    assert {globex, acme} <= plan.vouched and units.unit_path("tenant/hooli") not in plan.vouched
    assert not plan.reused["globex"].held and plan.parsed[globex] is None
    assert globex in built.result.files and globex not in built.result.files.held
    on_disk = (rendered_repo / globex).read_bytes()
    assert built.result.manifest["files"][globex]["sha256"] == hashlib.sha256(on_disk).hexdigest()
    assert built.result.files[globex] == on_disk
    assert plan.reused["globex"].declared  # read again, the same bytes: its contracts
    # the same for every vouched unit: the result and a full render agree byte for byte
    assert dict(built.result.files) == dict(pipeline.build(rendered_repo).result.files)
    manifest = rendered_repo / acme
    assert b'"target":"helm"' in manifest.read_bytes()
    manifest.write_bytes(manifest.read_bytes().replace(b'"target":"helm"', b'"target":"helm "', 1))
    with pytest.raises(UsageError, match=r"tenant-acme\.json changed while companyos was reading"):
        _ = plan.reused["acme"].declared


def test_a_tenant_edit_judges_only_the_changed_units_contracts(rendered_repo, monkeypatch):
    record = _record(rendered_repo, monkeypatch, racy_ns=0)
    assert "rendered/.companyos-units/global.json" in record["fleet"] and len(record["fleet"]) == 6
    edit_yaml(rendered_repo / "tenants/hooli.yaml", lambda data: data.update(owner="platform-b@example.com"))
    full = _full_checks(monkeypatch)
    read = _contracts_read(monkeypatch)
    built, plan = pipeline.build_incremental(rendered_repo)
    assert plan.previous is not None and sorted(u.raw.decode().split('"unit": "')[1].split('"')[0] for u in plan.previous) == [
        "global",
        "tenant/hooli",
    ]
    assert not full, "the whole fleet's contracts were judged again"
    assert sorted(read) == ["global", "tenant/hooli"], "a reused unit's contracts were read"
    assert dict(built.result.files) == dict(pipeline.build(rendered_repo).result.files)


def test_a_tenant_rendered_racy_and_settled_by_a_later_check_is_still_the_verified_fleets(rendered_repo, monkeypatch):
    """A unit written within the racy window has no stat sum; a later cached ``check`` finds
    its files settled and re-records the stat, not the unit sums. Its manifest's sha256 in
    the record's content sums still says it is the verified fleet's: the next edit of that
    very tenant judges only what it renders (it used to judge the whole fleet: at 10,000
    tenants 15 s and 3.4 GB)."""
    from generator.output import units

    _record(rendered_repo, monkeypatch, racy_ns=0)
    edit_yaml(rendered_repo / "tenants/hooli.yaml", lambda data: data.update(owner="platform-b@example.com"))
    monkeypatch.setattr(checkcache, "RACY_NS", 10**18)  # what this render writes is racy
    pipeline.render_to_disk(rendered_repo)
    hooli = units.unit_path("tenant/hooli")
    record = checkcache._read(rendered_repo)
    assert hooli in record["racy"] and hooli not in record["units"]
    monkeypatch.setattr(checkcache, "RACY_NS", 0)
    assert pipeline.check(rendered_repo, use_cache=True)[0] is None  # clean by the record: settles the racy files
    record = checkcache._read(rendered_repo)
    assert record["racy"] == {} and hooli not in record["units"], "the settled unit got a stat sum: not the case this test is about"
    edit_yaml(rendered_repo / "tenants/hooli.yaml", lambda data: data.update(owner="platform-c@example.com"))
    full = _full_checks(monkeypatch)
    built, plan = pipeline.build_incremental(rendered_repo)
    assert plan.render == {"hooli"} and plan.previous is not None and not full
    assert dict(built.result.files) == dict(pipeline.build(rendered_repo).result.files)
    # its manifest changed behind the record's back: not the verified fleet's, judge everything
    full.clear()
    edit_yaml(rendered_repo / "tenants/hooli.yaml", lambda data: data.update(owner="platform-d@example.com"))
    (rendered_repo / hooli).write_bytes((rendered_repo / hooli).read_bytes().replace(b'"version": ', b'"version":  ', 1))
    _, plan = pipeline.build_incremental(rendered_repo)
    assert plan.previous is None and full == [1]


@pytest.mark.parametrize("case", ["a reused unit's manifest not the one verified", "no record", "control: a reused unit's file edited"])
def test_the_whole_fleet_is_judged_when_the_old_fleet_is_not_known(rendered_repo, monkeypatch, case):
    """A hand edit of a reused unit's *file* does not make the fleet unknown: that unit renders
    again and its verified manifest (the sha256 recorded) says what it declared. Its manifest
    bytes changing does: what it declared is then not what was judged."""
    from generator.output import units

    _record(rendered_repo, monkeypatch, racy_ns=0)
    edit_yaml(rendered_repo / "tenants/hooli.yaml", lambda data: data.update(owner="platform-b@example.com"))
    if case == "a reused unit's manifest not the one verified":
        globex = rendered_repo / units.unit_path("tenant/globex")
        globex.write_bytes(globex.read_bytes().replace(b'"version": ', b'"version":  ', 1))  # read and hashed: not the verified fleet's
    elif case == "no record":
        (rendered_repo / CACHE_PATH).unlink()
    else:
        _same_size_edit(rendered_repo / "rendered/helm/dev/globex/api.yaml")  # not vouched for: read, hashed, rendered again
    full = _full_checks(monkeypatch)
    built, plan = pipeline.build_incremental(rendered_repo)
    if case.startswith("control"):
        assert plan.render == {"hooli", "globex"} and plan.previous is not None and not full
        assert dict(built.result.files) == dict(pipeline.build(rendered_repo).result.files)
    else:
        assert plan.previous is None
        assert full == [1]


@pytest.mark.parametrize("readable", [True, False])
def test_a_unit_the_old_fleet_had_and_nobody_renders_counts_as_withdrawn(readable):
    """A removed tenant's unit (in the old fleet, not in the catalog) joins ``previous`` (its
    producers are then withdrawn, which no proof accepts); unreadable, the old fleet is unknown."""
    from generator.output import units

    raw = {p.name: p.read_bytes() for p in (REPO / units.UNITS_DIR).glob("*.json")}
    paths = frozenset(units.unit_path(u) for u in ("global", "tenant/acme", "tenant/hooli"))
    history = units._History(units.Fleet(paths, lambda unit, recorded: True))
    history.rendered("global", units.parse_unit(raw["global.json"]))
    history.reused("tenant/acme", units.parse_unit(raw["tenant-acme.json"]), vouched=True)
    found = history.previous(lambda unit: raw["tenant-hooli.json"] if unit == "tenant/hooli" and readable else None)
    if readable:
        assert found is not None and [u.raw for u in found] == [raw["global.json"], raw["tenant-hooli.json"]]
    else:
        assert found is None


def test_an_edit_reads_each_unit_manifest_once(rendered_repo, monkeypatch):
    """The write takes the manifests the plan parsed under the same lock instead of reading
    them again (``tree.read_manifest(held=True)``); with --base the plan's are the base's."""
    from generator.output import tree, units

    _record(rendered_repo, monkeypatch, racy_ns=0)
    edit_yaml(rendered_repo / "tenants/hooli.yaml", lambda data: data.update(owner="platform-b@example.com"))
    seen: list[str] = []
    real = tree.read_file

    def reading(path, *args, **kwargs):
        seen.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(units, "read_file", reading)
    monkeypatch.setattr(tree, "read_file", reading)
    _, report = pipeline.render_to_disk(rendered_repo)
    reused = [p for p in seen if "/.companyos-units/" in p and not p.endswith(("/global.json", "/tenant-hooli.json"))]
    assert len(reused) == len(set(reused)) == 4, sorted(reused)  # the rendered two are compared with their new bytes
    assert report.written and pipeline.check(rendered_repo, full=True)[1].clean


def test_asking_whether_a_vouched_file_is_an_output_reads_no_unit_manifest(rendered_repo, monkeypatch):
    """The record asks, per unit, which of its files are outputs: a membership question is the
    entry's, not the recorded sha256's (reading it decodes the unit's manifest again)."""
    _record(rendered_repo, monkeypatch, racy_ns=0)
    edit_yaml(rendered_repo / "tenants/hooli.yaml", lambda data: data.update(owner="platform-b@example.com"))
    built, plan = pipeline.build_incremental(rendered_repo)
    shas = built.result.shas()
    globex = plan.reused["globex"]
    assert not globex.held and globex._shas is None
    assert all(path in shas for path in globex.entries) and "rendered/nowhere.yaml" not in shas
    assert globex._shas is None


@pytest.fixture
def split_walk(monkeypatch, tmp_path):
    """Every walk split with a worker (the sample is far below WALK_APART_FILES); the file
    each process that tallies a share of it adds its pid to."""
    import os

    monkeypatch.setattr(checkcache, "WALK_APART_FILES", 0)
    shares = tmp_path / "shares"
    shares.write_text("")
    real = checkcache._tally_below

    def spy(root, folders, *rest):  # type: ignore[no-untyped-def]
        found = real(root, folders, *rest)
        with shares.open("a") as out:
            out.write(f"{os.getpid()} {len(found.paths)}\n")
        return found

    monkeypatch.setattr(checkcache, "_tally_below", spy)
    return shares


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_a_walk_split_with_a_worker_tallies_what_the_walk_here_tallies(rendered_repo, monkeypatch, split_walk, depth):
    """Every file once, in one half or the other, at any split depth: a stray file at the top,
    a deep one, a link, a leftover temporary file, a recorded racy file and a wanted one."""
    import os
    import time

    monkeypatch.setattr(checkcache, "_SPLIT_DEPTH", depth)
    (rendered_repo / "rendered/stray.yaml").write_text("x")
    (rendered_repo / "rendered/helm/dev/globex/stray.yaml").write_text("x")
    os.symlink("api.yaml", rendered_repo / "rendered/helm/dev/globex/link.yaml")
    (rendered_repo / "rendered/helm/dev/acme/api.yaml.companyos-tmp").write_text("x")
    wanted, racy = {".github/workflows/render-check.yml"}, {"rendered/helm/dev/acme/api.yaml"}
    since = time.time_ns() - 10**9
    here = checkcache._walk_tally(rendered_repo, wanted, racy, since, apart=False)
    split = checkcache._walk_tally(rendered_repo, wanted, racy, since, apart=True)
    assert (split.total, split.settled, split.wanted, split.racy) == (here.total, here.settled, here.wanted, here.racy)
    assert sorted(split.paths) == sorted(here.paths) and sorted(split.racy_now) == sorted(here.racy_now)
    assert here.wanted == 1 and here.racy == 1 and "rendered/helm/dev/globex/link.yaml" in here.paths
    pid, share = split_walk.read_text().split()
    assert int(pid) != os.getpid() and 0 < int(share) < len(here.paths)  # the worker walked a real share


def test_a_no_op_walked_apart_is_clean_and_still_catches_a_same_size_edit(rendered_repo, monkeypatch, split_walk):
    record = _record(rendered_repo, monkeypatch, racy_ns=0)
    monkeypatch.setattr(checkcache, "inputs_digest", lambda root: record["inputs"])
    no_render(monkeypatch)
    real = checkcache._read_sum
    monkeypatch.setattr(checkcache, "_read_sum", lambda *a, **k: (_ for _ in ()).throw(AssertionError("hashed the outputs")))
    assert checkcache.known_clean(rendered_repo, apart=True) == record["files"]  # by the stat sum of both halves
    assert split_walk.read_text()
    monkeypatch.setattr(checkcache, "_read_sum", real)
    _same_size_edit(rendered_repo / "rendered/helm/dev/globex/api.yaml")
    assert checkcache.known_clean(rendered_repo, apart=True) is None


@pytest.mark.parametrize("full", [False, True], ids=["render", "render --full"])
@pytest.mark.parametrize("racy", [False, True])
def test_a_fresh_clones_record_sums_each_unit_as_its_files_stat_without_a_map_of_them(rendered_repo, monkeypatch, racy, full):
    """Without a record (a fresh clone) every unit's files are ``lstat``'ed and summed unit by
    unit (no map of 800,000 summands at 10,000 tenants): the sums are each unit's files' own,
    the tree's is their total, and a racy file is kept by content instead, its unit unsummed.
    A full render (nothing vouched for) records the same way."""
    import hashlib
    import json
    import os
    import shutil

    from generator.output import units

    shutil.rmtree(rendered_repo / checkcache.CACHE_DIR)
    monkeypatch.setattr(checkcache, "RACY_NS", 10**15 if racy else 0)
    monkeypatch.setattr(checkcache, "_stat_items", lambda *a: (_ for _ in ()).throw(AssertionError("a map of every summand")))
    pipeline.render_to_disk(rendered_repo, full=full)
    record = json.loads((rendered_repo / CACHE_PATH).read_text())
    members: dict[str, list[str]] = {}
    for manifest in sorted((rendered_repo / units.UNITS_DIR).rglob("*.json")):
        rel = manifest.relative_to(rendered_repo).as_posix()
        parsed = units.parse_unit(manifest.read_bytes())
        assert parsed is not None
        members[rel] = [rel, *parsed.entries]
    assert sorted(record["fleet"]) == sorted(members) and len(members) > 3

    def summand(rel: str) -> int:
        return checkcache._stat_item(rel, os.lstat(rendered_repo / rel))

    if racy:
        every = [rel for listed in members.values() for rel in listed]
        assert "units" not in record and record["stat"] == checkcache._hex(0)
        assert record["racy"] == {rel: hashlib.sha256((rendered_repo / rel).read_bytes()).hexdigest() for rel in every}
    else:
        assert record["racy"] == {}
        assert record["units"] == {unit: checkcache._hex(sum(map(summand, listed))) for unit, listed in members.items()}
        assert record["stat"] == checkcache._hex(sum(summand(rel) for listed in members.values() for rel in listed))
    assert checkcache.known_clean(rendered_repo) is not None  # the record vouches for the tree as it is
