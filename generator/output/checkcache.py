"""Remember a verified-clean tree, so an unchanged repository checks (and renders) in a
fraction of a render.

The answer only depends on every input byte (catalog, templates, the generator's code, the
versions of the libraries that shape output), every output byte on disk and today's date
(waivers expire). After a ``check`` or ``render`` finds the tree clean we store a digest of
each in ``.companyos-cache/check.json`` (git-ignored), plus a digest of every output's
``lstat`` as git's index does: when that matches, nothing is read; files written within
:data:`RACY_NS` of the record are re-hashed. Both digests are sums of per-file hashes, kept
per unit too: a one-tenant edit's record carries the other units' sums. Any difference,
``--full`` or ``--base`` takes the full path, which stays the authority; CI clones have no
cache. docs/architecture.md.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime
import functools
import hashlib
import itertools
import os
import time
from collections.abc import Callable, Collection, Container, Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import NamedTuple, cast

import msgspec

from generator.catalog.folders import INPUT_DIRS
from generator.output import committed, forked, json_pieces, lock, since_proof, tree
from generator.output.atomic import write_atomic_frames

# RACY_NS: a file whose ctime is this close to the record's (or later) may change again within
# one timestamp tick without its stat changing: it is hashed on every check instead.
from generator.output.listing import CACHE_DIR, RACY_NS
from generator.output.tree import files_under, read_file, read_manifest

CACHE_PATH = f"{CACHE_DIR}/check.json"
CACHE_VERSION = 4
#: Stat and content digests are sums of per-file hashes modulo this: a part of the tree (a
#: unit) sums on its own, so a record carries an unchanged unit's sum without touching its files.
_MODULUS = 1 << 256
#: Libraries whose version can change the bytes we write.
OUTPUT_LIBRARIES = ("jinja2", "pyyaml", "pydantic", "pydantic-core")
#: Outputs whose every file counts; generated workflows are added from the manifest (the
#: folder may also hold hand-written ones, which do not affect `check`), and leftover
#: temporary files from every output folder.
OUTPUT_DIRS = ("rendered",)


def _digest(root: Path, paths: Iterable[str]) -> str:
    """One hash over (path, content hash) pairs, in order (the inputs and the code)."""
    total = hashlib.sha256()
    base = os.fspath(root)
    for rel in paths:
        data = None
        with contextlib.suppress(OSError):  # unreadable counts as missing
            data = read_file(os.path.join(base, rel))
        total.update(rel.encode() + b"\0" + hashlib.sha256(b"\0missing" if data is None else data).digest())
    return total.hexdigest()


def inputs_digest(root: Path) -> str:
    """Every input file, the generator's code and the output-shaping library versions."""
    package = Path(__file__).resolve().parents[1]  # the whole ``generator`` package, not just output/
    code = _digest(package, [p.relative_to(package).as_posix() for p in sorted(package.rglob("*")) if p.suffix in (".py", ".yaml")])
    versions = []
    for name in OUTPUT_LIBRARIES:
        try:
            versions.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}==?")
    today = datetime.date.today().isoformat()  # an expired waiver turns a clean catalog into an error
    head = hashlib.sha256(f"{CACHE_VERSION}|{today}|{code}|{','.join(versions)}".encode()).hexdigest()
    return hashlib.sha256((head + _digest(root, files_under(root, INPUT_DIRS))).encode()).hexdigest()


def _output_paths(root: Path, extra: Iterable[str] | None = None) -> list[str]:
    """Everything under rendered/ plus the generated workflows: ``extra`` (from a record whose
    stat digest vouches for the manifests), else those the manifests on disk list."""
    paths = set(files_under(root, OUTPUT_DIRS))
    paths.update(extra if extra is not None else (p for p in read_manifest(root) if not p.startswith("rendered/")))
    # Temporary files an interrupted write left there make ``check`` fail: they must not
    # match a digest taken without them.
    paths.update(p for p in files_under(root, tree.OUTPUT_DIRS) if p.endswith(tree.TMP_SUFFIX))
    return sorted(paths)


def _item(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")


def _hex(total: int) -> str:
    return f"{total % _MODULUS:064x}"


def _content_sum(pairs: Iterable[tuple[str, str]]) -> int:
    """The order-free sum over (path, sha256 hex) pairs (:data:`_MODULUS`)."""
    return sum(_item(f"{rel}\0{sha}") for rel, sha in pairs)


def _read_sum(root: Path, paths: Iterable[str]) -> str:
    """:func:`_content_sum` of the files on disk (an unreadable one counts as missing)."""
    base = os.fspath(root)
    return _hex(_content_sum((rel, _sha(os.path.join(base, rel)) or "missing") for rel in paths))


def _sha(path: str) -> str | None:
    data = read_file(path)
    return None if data is None else hashlib.sha256(data).hexdigest()


#: From this many output files (as recorded), :func:`_stat_clean` walks half the folders in
#: a forked worker (the other core): at 10,000 tenants, 800,000 ``lstat`` and sums.
WALK_APART_FILES = 50_000
#: It splits the walk by the folders this many slashes down (``rendered/helm/dev/<tenant>``).
_SPLIT_DEPTH = 3


def _walk_stats(
    root: Path, folders: Iterable[str] = tree.OUTPUT_DIRS, *, stop_at: list[str] | None = None
) -> Iterator[tuple[str, os.stat_result]]:
    """Every file (and link) below ``folders`` with its own ``lstat`` (``tree.scan``), as the
    walk finds them: a caller sums them as they come (800,000 ``stat_result``s held at once
    were ~300 MB at 10,000 tenants). ``stop_at``: the folders :data:`_SPLIT_DEPTH` down are
    added to it instead of walked."""
    depth = None if stop_at is None else _SPLIT_DEPTH
    for rel, entry in tree.scan(root, folders, depth):
        if entry.is_dir(follow_symlinks=False):
            if stop_at is not None and rel.count("/") >= _SPLIT_DEPTH:
                stop_at.append(rel)
            continue
        try:
            yield rel, entry.stat(follow_symlinks=False)
        except OSError:
            continue


def _stat_item(rel: str, st: os.stat_result) -> int:
    """One path's summand of a stat sum (path, size, mtime, ctime, inode, mode): the sum
    over a set of paths is order-free."""
    return _item(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\0{st.st_mode}\n")


def _racy(st: os.stat_result, since: int) -> bool:
    """Whether a file changed at or after ``since`` (within :data:`RACY_NS` of now): its stat
    cannot vouch for its bytes, so it is kept by content."""
    return max(st.st_ctime_ns, st.st_mtime_ns) >= since


def _lstat_each(root: Path, paths: Iterable[str]) -> Iterator[tuple[str, os.stat_result]]:
    """(path, its ``lstat``) of each of ``paths`` in turn, none kept; OSError when one cannot be."""
    prefix = os.path.join(os.fspath(root), "")  # plain concatenation: a million os.path.join calls cost seconds
    for rel in paths:
        yield rel, os.lstat(prefix + rel)


def _lstat_sum(root: Path, paths: Iterable[str]) -> int | None:
    """The stat sum of ``paths`` as they ``lstat`` now, each stat summed as taken (no
    map of them: a vouch asks 800,000 files at 10,000 tenants); None when one cannot be."""
    try:
        return sum(_stat_item(rel, st) for rel, st in _lstat_each(root, paths))
    except OSError:
        return None


class _Walked(NamedTuple):
    """What :func:`_stat_clean` found on a tree as recorded: every output file (sorted), and
    the stat part of a new record taken from the same ``lstat``s with racy files judged now
    (empty when a racy one cannot be read). A no-op after a render settles the render's
    racy files with it, instead of a second ``lstat`` of every file (at 10,000 tenants
    800,000 more: ~2 s)."""

    paths: list[str]
    record: dict[str, object]


class _Tally(NamedTuple):
    """What a walk (or a share of it) found for :func:`_stat_clean`: the stat sum of the
    files not racy in the record, that of the files not racy now, how many of the wanted
    (outside rendered/) and recorded racy files it met, the files racy now and every file."""

    total: int
    settled: int
    wanted: int
    racy: int
    racy_now: list[str]
    paths: list[str]

    def joined(self, other: _Tally) -> _Tally:
        return _Tally(
            self.total + other.total,  # order-free sums
            self.settled + other.settled,
            self.wanted + other.wanted,
            self.racy + other.racy,
            self.racy_now + other.racy_now,
            self.paths + other.paths,
        )


def _tally(found: Iterable[tuple[str, os.stat_result]], wanted: Container[str], racy: Container[str], since: int) -> _Tally:
    """Each ``lstat`` summed as the walk takes it."""
    paths: list[str] = []
    racy_now: list[str] = []
    total = settled = found_wanted = found_racy = 0
    for rel, st in found:
        if rel.startswith("rendered/") or rel in wanted or rel.endswith(tree.TMP_SUFFIX):
            paths.append(rel)
            found_wanted += rel in wanted
            item = _stat_item(rel, st)
            if rel in racy:
                found_racy += 1
            else:
                total += item
            if _racy(st, since):
                racy_now.append(rel)
            else:
                settled += item
    return _Tally(total, settled, found_wanted, found_racy, racy_now, paths)


def _walk_tally(root: Path, wanted: Container[str], racy: Container[str], since: int, *, apart: bool) -> _Tally:
    """:func:`_tally` of every output file: here, or with ``apart`` half of the folders
    :data:`_SPLIT_DEPTH` down (every other one) in a forked worker, the rest here."""
    if not apart:
        return _tally(_walk_stats(root), wanted, racy, since)
    deep: list[str] = []
    near = list(_walk_stats(root, stop_at=deep))
    with forked.apart(functools.partial(_tally_below, root, deep[1::2], wanted, racy, since), wanted=True) as theirs:
        mine = _tally(itertools.chain(near, _walk_stats(root, deep[::2])), wanted, racy, since)
        return mine.joined(theirs())


def _tally_below(root: Path, folders: list[str], wanted: Container[str], racy: Container[str], since: int) -> _Tally:
    """The worker's share: its walk starts there (a generator made here would walk here)."""
    return _tally(_walk_stats(root, folders), wanted, racy, since)


def _stat_clean(root: Path, cached: Mapping[str, object], *, apart: bool = False) -> _Walked | None:
    """The record's stat digest and racy files match the tree: unchanged, nothing read
    but the racy files. Every output file then, and a new record's stat part; else None.
    ``apart``: the walk may use a worker on the other core (:func:`_walk_tally`)."""
    extra, racy, stat, files = cached.get("extra"), cached.get("racy"), cached.get("stat"), cached.get("files")
    if not (isinstance(extra, list) and isinstance(racy, dict) and isinstance(stat, str)):
        return None
    wanted = set(extra)
    split = apart and isinstance(files, int) and files >= WALK_APART_FILES
    found = _walk_tally(root, wanted, racy, time.time_ns() - RACY_NS, apart=split)
    if found.wanted != len(wanted) or found.racy != len(racy):  # a walk lists each path once
        return None
    base = os.fspath(root)
    if any(_sha(os.path.join(base, rel)) != sha for rel, sha in racy.items()) or _hex(found.total) != stat:
        return None
    found.paths.sort()  # in place: no second list of 800,000 paths
    return _Walked(found.paths, _stat_part(root, found.settled, found.racy_now, found.paths))


def _read(root: Path) -> dict[str, object]:
    try:
        data = msgspec.json.decode((root / CACHE_PATH).read_bytes())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def known_clean(root: Path, inputs: str | None = None, *, apart: bool = False) -> int | None:
    """The number of generated files when the tree is exactly as last verified clean, else
    None. ``inputs``: :func:`inputs_digest`, when the caller has it already. ``apart``: a
    large tree's walk may use a worker on the other core."""
    cached = _read(root)
    if cached.get("version") != CACHE_VERSION or "inputs" not in cached:
        return None
    files = cached.get("files")
    if cached["inputs"] != (inputs or inputs_digest(root)) or not isinstance(files, int):
        return None
    extra, proof = cached.get("extra"), cached.get("git")
    if _proof_may_hold(root, cached):
        if isinstance(proof, str) and isinstance(extra, list) and committed.unchanged(root, root / CACHE_DIR, extra, proof):
            return files  # the committed tree, as git's index proves it (output.committed)
        if since_proof.clean_since_proof(root, cached):
            return files  # edited since git proved it: git, the changed folders and the edited units' bytes
    walked = _stat_clean(root, cached, apart=apart)
    if walked is not None:
        paths = walked.paths
        was_racy = bool(cached.get("racy"))
        if was_racy:  # written just before the record: old enough now to be trusted by stat
            cached = {**cached, **walked.record}  # the walk's paths: _output_paths' (the extras all found)
            if not walked.record or cached.get("racy"):  # some are still racy: git's proof waits for them
                _record(root, cached)
                return files
        # settled or not, one walk serves git's proof too (a render's files used to need two slow no-ops)
        if (state := committed.index_state(root)) is not None and cached.get("git_tried") != state:
            # clean by stat and committed, perhaps: let git prove it next time (tried once per index and HEAD)
            attempt = committed.record(root, root / CACHE_DIR, paths)
            entry = {**cached, "git_tried": state if attempt.settled else None, "git": attempt.key}
            if attempt.base is not None and isinstance(cached.get("fleet"), list):  # the proven commit's outputs: these units, verified
                entry["git_base"] = {
                    "key": attempt.base,
                    "fleet": cached["fleet"],
                    "folders": attempt.folders,
                    "manifests": since_proof.recorded_manifests(cached),
                }
            _record(root, entry)
        elif proof is not None:  # a proof that no longer holds costs a git run each time: drop it
            _record(root, {**cached, "git": None})
        elif was_racy:  # its files re-recorded by stat
            _record(root, cached)
        return files
    paths = _output_paths(root)
    if cached.get("outputs") != _read_sum(root, paths):
        return None
    _record(root, {**cached, **_stat_record(root, paths)})  # clean by content: stat it afresh
    return files


class AsVerified(NamedTuple):
    """A tree as last verified clean for these very inputs: nothing to render or compare."""

    #: Generated files the tree holds.
    files: int
    #: The waiver notes the run that verified it printed.
    notes: tuple[str, ...]


def as_last_verified(root: Path, jobs: int, *, writer: bool) -> tuple[AsVerified | None, str]:
    """The first question of ``render`` (``writer``: under the writer's lock) and of a cached
    ``check`` (reading, ``tree.quiescent``), an interrupted write repaired first: whether the
    inputs and the tree are as last verified clean (:func:`known_clean`, a large tree's walk
    on a worker when ``jobs`` > 1), and the inputs digest (the key of the record a render or
    check makes next). This module loads none of the render's code: at 10,000 tenants a no-op
    answered here, before the CLI loads the rest, starts git's proof ~0.25 s sooner."""
    tree.recover(root)
    with lock.hold(root) if writer else tree.quiescent(root):
        inputs = inputs_digest(root)
        files = known_clean(root, inputs, apart=jobs > 1)
        return (None if files is None else AsVerified(files, notes(root) if writer else ())), inputs


def _proof_may_hold(root: Path, cached: Mapping[str, object]) -> bool:
    """False when git's proof recorded with ``cached`` cannot hold any more: the part of its key
    a write leaves true (the proven commit's outputs, git's settings and attributes, the
    proven index copy's identity) changed, as after a config change or a new proof's copy.
    Asking git then cost ~2.4 s at 10,000 tenants before the walk (``committed.unchanged``
    and ``since_proof`` each run git and stat every folder); a few git calls answer it. True
    when there is nothing to ask."""
    proven, extra = cached.get("git_base"), cached.get("extra")
    key = proven.get("key") if isinstance(proven, dict) else None
    if not (isinstance(key, str) and isinstance(extra, list)):
        return True
    return committed.base_now(root, root / CACHE_DIR, extra) == key


def notes(root: Path) -> tuple[str, ...]:
    """The waiver notes the last verified-clean render or check printed (for a render with
    nothing to do)."""
    found = _read(root).get("notes")
    return tuple(str(n) for n in found) if isinstance(found, list) else ()


def remember_clean(
    root: Path,
    outputs: Mapping[str, str],
    inputs: str | None = None,
    notes: Iterable[str] = (),
    units: Mapping[str, Iterable[str]] | None = None,
    vouched: Collection[str] | None = None,
) -> None:
    """Record that the tree as it is now matches the catalog as it is now (best effort).

    ``outputs``: every output file's sha256 (hex) exactly as it now is on disk (after a
    render with no unmanaged files, or a check that found the tree clean: the render's
    manifest entries), so nothing is read back. ``inputs``: as for :func:`known_clean`.
    ``units``: unit manifest path -> the files it lists; each unit none of whose files is
    racy gets its own stat sum, which lets the next incremental render or check reuse it
    without reading its files (:func:`proofs`), even after the inputs changed.
    ``vouched``: the unit manifests (paths) this run found, under the lock, to stat as the
    record it replaces says, and did not write since (:func:`proofs`). Such a unit keeps
    its recorded stat sum, and a unit whose manifest is unchanged its content sum: both add
    into the tree's, so a one-tenant edit at 10,000 tenants stats and hashes that tenant's
    files, not 800,000."""
    paths = sorted(outputs)  # in path order already (RenderResult.shas): a linear pass
    before = _read(root) if units is not None else {}
    if before.get("version") != CACHE_VERSION:
        before = {}  # another version's sums mean something else
    members = {unit: _members(unit, listed) for unit, listed in units.items()} if units is not None else None
    entry = {
        "version": CACHE_VERSION,
        "inputs": inputs or inputs_digest(root),
        "files": len(outputs),
        "notes": list(notes),
        **_content_record(outputs, members, before),
        **_stat_record(root, paths, members, vouched, before, outputs),
    }
    if isinstance(before.get("git_base"), dict):  # a fact about the proven commit and index copy, whatever this run wrote
        entry["git_base"] = before["git_base"]
    _record(root, entry)


def _content_record(outputs: Mapping[str, str], units: Mapping[str, list[str]] | None, before: Mapping[str, object]) -> dict[str, object]:
    """The tree's content sum, and each unit's keyed by its manifest's sha256: a unit manifest
    lists every file's sha256, so equal manifest bytes mean an equal sum. ``units``: unit ->
    :func:`_members`."""
    if units is None:
        return {"outputs": _hex(_content_sum(outputs.items()))}
    old = before.get("contents")
    carried = old if isinstance(old, dict) else {}
    sums: dict[str, list[str]] = {}
    covered: set[str] = set()
    total = 0
    for unit, members in units.items():
        sha = outputs.get(unit)
        if sha is None:
            continue  # not an output: its files are summed one by one below
        covered.add(unit)
        was = carried.get(unit)
        if isinstance(was, list) and len(was) == 2 and was[0] == sha and isinstance(was[1], str):
            part = int(was[1], 16)
        else:
            part = _content_sum((rel, outputs[rel]) for rel in members if rel in outputs)
        sums[unit] = [sha, _hex(part)]
        total += part
    total += _content_sum((rel, outputs[rel]) for rel in _rest(outputs, units, covered))  # the sha looked up only then
    return {"outputs": _hex(total), "contents": sums}


def _rest(outputs: Collection[str], units: Mapping[str, list[str]], covered: Container[str]) -> list[str]:
    """The outputs none of the ``covered`` units lists. When the units list every output
    once, the other units' files: ``units.membership``'s list only outputs, and no file
    twice (the plan reuses no unit that lists another's file), so equal counts prove it.
    Else (counts differ) through a set of the covered units' files (at 10,000 tenants a
    set of 800,000 paths was ~40 MB of an edit's peak)."""
    if sum(map(len, units.values())) == len(outputs):
        return [rel for unit, members in units.items() if unit not in covered for rel in members]
    listed = {rel for unit, members in units.items() if unit in covered for rel in members}
    return [rel for rel in outputs if rel not in listed]


def _stat_record(
    root: Path,
    paths: list[str],
    units: Mapping[str, list[str]] | None = None,
    vouched: Collection[str] | None = None,
    before: Mapping[str, object] | None = None,
    shas: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """The stat part of a record (empty when a file cannot be stat'ed or read: hashing then).
    Racy: a file whose ctime or mtime is within :data:`RACY_NS` of now, kept by content hash;
    a unit with a racy file gets no stat sum of its own. ``units``: unit -> :func:`_members`.
    ``before``: the record this one
    replaces, whose sums of the units ``vouched`` for this run are carried (their files are
    not stat'ed again: the sum was taken with none of them racy, and they stat the same).
    ``shas``: the sha256 each file was verified or written with (:func:`_kept_by_content`)."""
    if units is None:
        return _plain_stat_record(root, paths, shas)
    since = time.time_ns() - RACY_NS
    old = (before or {}).get("units") if vouched else None
    recorded = old if isinstance(old, dict) else {}
    sums: dict[str, str] = {}
    total = 0
    for unit in units or {}:  # vouched for this run by this very sum, nothing written since
        was = recorded.get(unit)
        if isinstance(was, str) and vouched is not None and unit in vouched:
            sums[unit] = was
            total += int(was, 16)
    if units and sum(map(len, units.values())) == len(paths):
        # every output in one unit: no map of them (after a full render too: at 10,000 x 3 a
        # map of the walk's 800,000 fresh paths and summands was ~120 MB of its peak)
        streamed = _stat_by_unit(root, units, sums, since, shas)
        if streamed is None:
            return {}
        return _finished(total + streamed[0], streamed[1], paths, sums, units)
    rest = _rest(paths, units, sums) if units else paths
    found = _stat_items(_lstat_each(root, rest), since)
    if found is None:
        return {}
    kept = _kept_by_content(root, (rel for rel in rest if found[rel] is None), shas)
    if kept is None:
        return {}
    for unit, members in (units or {}).items():
        if unit not in sums and all(found.get(rel) is not None for rel in members):
            sums[unit] = _hex(sum(cast(int, found[rel]) for rel in members))
    total += sum(cast(int, found[rel]) for rel in rest if rel not in kept)
    return _finished(total, kept, paths, sums, units)


def _finished(
    total: int, kept: dict[str, str], paths: list[str], sums: dict[str, str], units: Mapping[str, list[str]] | None
) -> dict[str, object]:
    out: dict[str, object] = {
        "stat": _hex(total),
        "racy": kept,
        "extra": _outside_rendered(paths),
    }
    if sums:
        out["units"] = sums
    if units is not None:
        out["fleet"] = sorted(units)  # every unit verified together, vouched for or not (units.Fleet)
    return out


def _stat_by_unit(
    root: Path, units: Mapping[str, list[str]], sums: dict[str, str], since: int, shas: Mapping[str, str] | None
) -> tuple[int, dict[str, str]] | None:
    """:func:`_stat_record`'s sums taken unit by unit, when every output is in exactly one
    unit: each file of a unit not in ``sums`` is ``lstat``'ed and summed as taken; a unit
    with no racy file gets its sum in ``sums``. Returns the sum of every non-racy summand
    and the racy files kept by content (:func:`_kept_by_content`); None when a file cannot
    be stat'ed or read. A map of 800,000 summands was ~100 MB at 10,000 tenants."""
    total = 0
    racy: list[str] = []
    try:
        for unit, members in units.items():
            if unit in sums:
                continue
            part, clean = 0, True
            for rel, st in _lstat_each(root, members):
                if _racy(st, since):
                    racy.append(rel)
                    clean = False
                else:
                    part += _stat_item(rel, st)
            if clean:
                sums[unit] = _hex(part)
            total += part
    except OSError:
        return None
    kept = _kept_by_content(root, racy, shas)
    return None if kept is None else (total, kept)


def _plain_stat_record(root: Path, paths: list[str], shas: Mapping[str, str] | None = None) -> dict[str, object]:
    """:func:`_stat_record` without units: each ``lstat`` summed as taken (no map of
    800,000 stats)."""
    since = time.time_ns() - RACY_NS
    total = 0
    racy: list[str] = []
    try:
        for rel, st in _lstat_each(root, paths):
            if not _racy(st, since):
                total += _stat_item(rel, st)
            else:
                racy.append(rel)
    except OSError:
        return {}
    return _stat_part(root, total, racy, paths, shas)


def _stat_part(root: Path, settled: int, racy: Iterable[str], paths: list[str], shas: Mapping[str, str] | None = None) -> dict[str, object]:
    """The stat part of a record without units: the sum of the files old enough to trust by
    stat (``settled``), the ``racy`` others kept by content, the outputs outside rendered/;
    empty when a racy file cannot be read."""
    kept = _kept_by_content(root, racy, shas)
    if kept is None:
        return {}
    return {"stat": _hex(settled), "racy": kept, "extra": _outside_rendered(paths)}


def _kept_by_content(root: Path, racy: Iterable[str], shas: Mapping[str, str] | None) -> dict[str, str] | None:
    """The sha256 each ``racy`` file is kept by: the one it was verified or written with
    (``shas``, what the record says the tree holds; a file changed since then fails the next
    check's comparison instead of being recorded as clean), else its bytes' now. None when
    one of those cannot be read. After a cold render every file is racy: at 1,000 tenants
    reading back the 80,000 just written was ~1 s."""
    base = os.fspath(root)
    kept: dict[str, str] = {}
    for rel in racy:
        sha = shas.get(rel) if shas is not None else None
        if sha is None:
            sha = _sha(os.path.join(base, rel))
            if sha is None:
                return None
        kept[rel] = sha
    return kept


def _outside_rendered(paths: list[str]) -> list[str]:
    """The outputs outside rendered/ (the workflows) of ``paths``, which are sorted: those
    under rendered/ are one run, found by bisection (at 10,000 tenants a test of each of
    800,000 paths was ~0.2 s of an edit)."""
    start, end = bisect.bisect_left(paths, "rendered/"), bisect.bisect_left(paths, "rendered0")  # "0" follows "/"
    return paths[:start] + paths[end:]


def _stat_items(stats: Iterable[tuple[str, os.stat_result]], since: int) -> dict[str, int | None] | None:
    """Each path's :func:`_stat_item`, or None when it is racy (changed at or after ``since``);
    None when one cannot be stat'ed. Summands, not ``stat_result``s: after a cold render at
    1,000 tenants x 3 a map of the 80,000 stats was ~40 MB of the render's peak."""
    try:
        return {rel: None if _racy(st, since) else _stat_item(rel, st) for rel, st in stats}
    except OSError:
        return None


def _members(unit: str, listed: Iterable[str]) -> list[str]:
    """What a unit's stat digest covers: its manifest and every file it lists (the sums are
    order-free: no sort)."""
    return [unit, *itertools.filterfalse(unit.__eq__, listed)]  # in C: 800,000 paths at 10,000 tenants x 3


#: unit manifest path, its files -> whether they hold the bytes that manifest records, known
#: without reading them (``units.plan`` asks it per unit; false: read and hash them).
Vouch = Callable[[str, Iterable[str]], bool]
#: A unit manifest's path, the files it lists and its bytes -> whether it still holds the bytes verified.
Same = Callable[[str, Iterable[str], bytes], bool]


class Proofs(NamedTuple):
    """What the working tree's verified-clean record proves for an incremental run: whether
    a unit holds its recorded bytes (:func:`_vouching`) and the fleet verified last (:func:`_fleet`)."""

    vouch: Vouch
    fleet: tuple[frozenset[str], Same] | None


def proofs(root: Path) -> Proofs:
    """The record read once, for the unit plan. Only for the working tree; ``check --base``
    and CI never have a record.

    A unit is vouched for when its manifest and files still ``lstat`` exactly as when the
    tree was last verified clean (then each holds the sha256 that manifest records: the same
    argument as git's index). When git once proved the tree (``output.committed``) and git's
    settings and the proven index copy are still as then (the record's ``git_base``), a unit of that
    tree whose manifest and files ``git diff-files`` does not list holds the bytes verified
    then, whatever was written since: no ``lstat`` of it (at 10,000 tenants, 800,000 calls
    fewer per edit). git starts now: call this before the catalog is loaded, and the two overlap."""
    recorded = _read(root)
    vouch = _vouching(root, recorded)
    return Proofs(vouch, _fleet(recorded, vouch))


def _vouching(root: Path, recorded: Mapping[str, object]) -> Vouch:
    current = recorded.get("version") == CACHE_VERSION
    found, proven, extra = recorded.get("units"), recorded.get("git_base"), recorded.get("extra")
    known = found if current and isinstance(found, dict) else {}
    base_key = proven.get("key") if current and isinstance(proven, dict) else None
    base_fleet = proven.get("fleet") if isinstance(proven, dict) else None
    # the units of the tree git proved, and what git lists as changed since (None: no proof now)
    committed_units = frozenset(map(str, base_fleet)) if isinstance(base_key, str) and isinstance(base_fleet, list) else frozenset()
    if not known and not committed_units:
        return lambda unit, listed: False
    # git's answer, asked once (it holds for the run, which is under the writer lock)
    asked = isinstance(base_key, str) and committed_units and isinstance(extra, list)
    changed = functools.cache(committed.changed_later(root, root / CACHE_DIR, extra, base_key) if asked else _no_proof)  # type: ignore[arg-type]

    def vouch(unit: str, listed: Iterable[str]) -> bool:
        if unit in committed_units:
            moved = changed()
            if moved is not None and unit not in moved and moved.isdisjoint(listed):  # in C: ~80 paths a unit
                return True
        expected = known.get(unit)
        if not isinstance(expected, str):
            return False
        found = _lstat_sum(root, _members(unit, listed))
        return found is not None and _hex(found) == expected

    return vouch


def _no_proof() -> frozenset[str] | None:
    return None


def _fleet(recorded: Mapping[str, object], vouch: Vouch) -> tuple[frozenset[str], Same] | None:
    """The unit manifests (paths) of the tree last verified clean -- they passed the contract
    check together, so an incremental run judges only what it renders again
    (``contracts.unchanged``) -- and whether one still holds the bytes verified then: its stat
    vouches for it, or its sha256 is the one the record took of it (its content sum's key).
    The sha256 serves a unit written within :data:`RACY_NS` of the record, which has no stat
    sum, and it keeps serving once a later run found its files settled: that run re-records
    the stat but not the unit sums, and the next edit of that very tenant used to judge the
    whole fleet's contracts (15 s and 3.4 GB at 10,000 tenants). None without a record that
    lists them."""
    found = recorded.get("fleet") if recorded.get("version") == CACHE_VERSION else None
    if not isinstance(found, list):
        return None
    verified = since_proof.recorded_manifests(recorded)

    def same(unit: str, listed: Iterable[str], raw: bytes) -> bool:
        return vouch(unit, listed) or verified.get(unit) == hashlib.sha256(raw).hexdigest()

    return frozenset(str(p) for p in found), same


def _record(root: Path, entry: Mapping[str, object]) -> None:
    with contextlib.suppress(OSError):  # a read-only checkout simply never takes the fast path
        # a piece at a time: after a cold render every file is racy, and a str of the record
        # and its encoding were ~240 MB at 10,000 tenants x 3
        write_atomic_frames(root / CACHE_PATH, itertools.chain(json_pieces.pieces(entry), (b"\n",)))
