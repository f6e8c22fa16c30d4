"""The pipeline, wired in one place: load -> references -> resolve -> policy -> render.

This is the library API the CLI, the lifecycle commands and the tests share. Each stage is
a plain function of the one before; only :func:`load` reads and ``output.tree`` writes.
Code that needs a model without the policy verdict (an old git ref, ``explain`` while a
rule fails) calls :func:`resolve_only` and says so.
"""

from __future__ import annotations

import datetime
import functools
import gc
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from generator.catalog.folders import find_root
from generator.catalog.load import Catalog, read_catalog
from generator.catalog.parse_cache import ParseCache
from generator.catalog.snapshot import Baseline
from generator.errors import CatalogError, CatalogErrors
from generator.model.name_registry import check_names
from generator.model.references import check_references
from generator.model.resolve import Model, resolve
from generator.output import checkcache, forked, head_status, lock, parallel, parse_store, tree, unit_cache, units, walk_apart
from generator.output.forked import default_jobs
from generator.output.listing import Listing
from generator.output.parse_store import load_memo, load_parses
from generator.output.render import RenderResult
from generator.policy.core import PolicyReport
from generator.policy.evaluate import evaluate, root_causes


@dataclass(frozen=True)
class Judged:
    """A resolved model and the policy verdict on it (errors empty: it may be rendered)."""

    model: Model
    policy: PolicyReport


@dataclass(frozen=True)
class Build:
    root: Path
    model: Model
    result: RenderResult
    policy: PolicyReport
    #: Tenants whose recorded unit was reused: their inputs (the context and their own files)
    #: are the record's -- with ``check --base``, the base commit's (``output.units``).
    reused: frozenset[str] = frozenset()

    def made(self) -> Made:
        return Made(self.root, self.result, self.policy, self.reused)


@dataclass(frozen=True)
class Made:
    """A :class:`Build` without its model: what ``render_tree`` and ``check_tree`` (the CLI's
    ``render`` and ``check``) return. The write and the comparison never read the model, so
    it goes before them (at 10,000 tenants x 3 the write's growth then fits in its memory,
    and the cold render's peak is the render's)."""

    root: Path
    result: RenderResult
    policy: PolicyReport
    reused: frozenset[str] = frozenset()


_Kept = TypeVar("_Kept", Build, Made)
#: What ``check --base`` compares with the base besides the files (:func:`check_against`).
_Compared = TypeVar("_Compared")


@dataclass(frozen=True)
class _CleanRecord:
    """What a run records once it found the tree clean, taken from the model before the write
    or the comparison (the model may go then): the catalog's parses and memo, the unit cache
    (``todo``), and the tree's sums with the policy's waiver notes (``checkcache``)."""

    root: Path
    encoded: parse_store.Encoded
    notes: tuple[str, ...]
    inputs: str | None
    #: The units the stat record vouched for under the lock (``checkcache.remember_clean``).
    vouched: frozenset[str] | None
    todo: units.Plan | None

    @classmethod
    def of(cls, built: Build, inputs: str | None, todo: units.Plan | None = None) -> _CleanRecord:
        vouched = todo.vouched if todo is not None else None
        return cls(built.root, parse_store.encode(built.root, built.model.catalog), waiver_notes(built), inputs, vouched, todo)

    def save(self, result: RenderResult) -> None:
        """Record that the tree holds exactly ``result``'s files (its entries' sha256s)."""
        self.encoded.save(self.root)
        if self.todo is not None and self.todo.uncached:
            unit_cache.save(self.root, self.todo.context, self.todo.cached_units())
        checkcache.remember_clean(
            self.root, result.shas(), self.inputs, notes=self.notes, units=units.membership(result), vouched=self.vouched
        )


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector rarely while we build (see docs/benchmark.md)."""
    previous = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


#: How a whole catalog read treats the parse cache (``catalog.parse_cache``): reuse the last
#: clean run's parses; parse every file and keep the parses for a clean run to save
#: (``--full``); or parse every file and keep nothing (``check --base --committed``: CI's,
#: which trusts no local cache; no ``--base`` run saves one).
Parses = Literal["reuse", "fresh", "none"]


def load(
    root: Path,
    tenants: Collection[str] | None = None,
    known: Collection[str] | None = None,
    *,
    parses: Parses = "reuse",
    names: bool = True,
) -> Catalog:
    """Read every file, then the cross-file checks; raise CatalogErrors with all problems.
    Every command loads first, so this is where an interrupted tree write is repaired.
    ``tenants``, ``known``: read only these tenants' files (``read_catalog``). A whole read
    reuses the parse of every file unchanged since the last clean run (``parse_cache``),
    unless ``parses`` says otherwise (:data:`Parses`). Without ``names`` the name clashes
    are left to the caller (:func:`resolve_named`) unless another check fails: all errors
    are then raised at once, as always."""
    tree.recover(root)
    cache = None if tenants is not None or parses == "none" else load_parses(root) if parses == "reuse" else ParseCache()
    catalog, errors = read_catalog(root, tenants, known, cache)
    if cache is not None:  # the tenants' names as last derived, for files unchanged since (``file_memo``)
        catalog.memo = load_memo(root, catalog, units.code_digest(), reuse=parses == "reuse")
    errors = [*errors, *check_references(catalog, names=names)]
    if errors:
        _refuse_loaded(catalog, [*errors, *(() if names else check_names(catalog))])
    return catalog


def _refuse_loaded(catalog: Catalog, errors: list[CatalogError]) -> None:
    """Raise the load's ``errors`` (if any), the rules that judge the catalog alone first."""
    if errors:
        raise CatalogErrors(errors, root_causes=root_causes(catalog))


def resolve_only(root: Path, *, parses: Parses = "reuse") -> Model:
    """Load and resolve without judging: for old git refs and for ``explain``."""
    return resolve(load(root, parses=parses))


def resolve_named(root: Path, parses: Parses = "none") -> Model:
    """:func:`resolve_only` for ``check --base``, its name clashes left to :func:`judge_named`,
    which judges them with the policy on the other core while the units render (at 10,000
    tenants x 3 they were ~1 s of the load). ``parses``: the catalog read afresh (CI's
    ``--committed``) or through the last clean run's parses (the working tree's). A catalog
    that does not resolve brings its name clashes with it, as the load would have."""
    catalog = load(root, parses=parses, names=False)
    try:
        return resolve(catalog)
    except CatalogErrors:
        _refuse_loaded(catalog, check_names(catalog))
        raise


@dataclass(frozen=True)
class Judgement:
    """:func:`judge_named`'s verdict: the name clashes; the policy's report, None while names
    clash (not judged, as when the load refused the catalog)."""

    clashes: list[CatalogError]
    policy: PolicyReport | None


def judge_named(model: Model, today: datetime.date, *, names: bool = True) -> Judgement:
    """The name clashes :func:`resolve_named` left (``names``: it did), then (none found) the
    policy stage."""
    clashes = check_names(model.catalog) if names else []
    return Judgement(clashes, None if clashes else judge(model, today))


def judge(model: Model, today: datetime.date | None = None) -> PolicyReport:
    """The policy stage: every rule, minus what valid waivers cover, for ``today``."""
    return evaluate(model, today or datetime.date.today())


def resolve_checked(root: Path, today: datetime.date | None = None, *, parses: Parses = "reuse") -> Judged:
    """Load, resolve and judge; raise CatalogErrors when any rule fails."""
    model = resolve_only(root, parses=parses)
    report = judge(model, today)
    if report.errors:
        raise CatalogErrors(report.errors)
    return Judged(model, report)


def model_at(base: Baseline, only: Collection[str] | None = None) -> tuple[Model | None, str | None]:
    """The catalog at a base git ref, resolved with today's code and not judged (yesterday's
    catalog is not held to today's waivers): the model, or None and why it does not load.
    ``only``: read and resolve these tenants alone (``read_catalog``, ``model.resolve``)."""
    try:
        return resolve(load(base.catalog_root(only), only, base.tenant_names()), only), None
    except CatalogErrors as errors:
        first = errors.errors[0] if errors.errors else "unknown error"
        return None, f"the catalog at {base.ref} does not load with this version of companyos ({len(errors.errors)} errors; first: {first})"


def build(
    root: Path | None = None,
    jobs: int | None = None,
    today: datetime.date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Build:
    """Load, resolve, judge and render the catalog at ``root`` (default: found from the cwd)."""
    root = find_root(root or Path.cwd())
    with fewer_collections():
        judged = resolve_checked(root, today, parses="fresh")
        # every unit rendered (none is recorded): a large catalog's a chunk of tenants at a time
        found, nothing = units.digests(root, judged.model), lambda unit: None
        jobs = jobs if jobs is not None else default_jobs()
        result, _ = units.render_incremental(judged.model, root, found, nothing, jobs=jobs, progress=progress)
        return Build(root, judged.model, result, judged.policy)


def build_incremental(
    root: Path | None = None,
    base: Baseline | None = None,
    today: datetime.date | None = None,
    *,
    trust_stat: bool = True,
    meanwhile: Callable[[Model, RenderResult, units.Plan], None] | None = None,
) -> tuple[Build, units.Plan]:
    """Load, resolve and judge everything (policy runs every time), then render only the
    tenants whose inputs changed since their recorded unit (``output.units``): recorded in
    the working tree, or with ``base`` in the base commit (``check --base``: nothing in the
    working tree's manifests is trusted). ``trust_stat``: reuse a working-tree unit without
    reading its files when the verified-clean record's stat digest vouches for them.
    ``meanwhile``: work that reads the render but writes nothing, run once the units are
    rendered and before the policy's verdict is awaited (``check --base`` compares the tree
    and the base there while the policy is judged on the other core); when it fails, the
    policy's errors still come first."""
    root = find_root(root or Path.cwd())
    with fewer_collections():
        # asked first: git's proof of a committed tree (if recorded) runs while the catalog loads
        proofs = checkcache.proofs(root) if base is None and trust_stat else None
        # with --base (CI: no cache, so no memo of the names) the names are judged with the
        # policy on the other core, always there (_Verdict): ~1 s at 10,000 tenants x 3. With
        # the memo they cost ~0.3 s in the load, and an edit judges here after its plan
        # (units.Early), where the check's table of digests raised the peak by ~50 MB
        names_apart = base is not None
        try:
            if base is not None:  # the working tree's parses as its render left them; never for --committed
                model = resolve_named(root, "reuse" if base.head is None else "none")
            else:
                model = resolve_only(root, parses="reuse")
        finally:  # --committed: the catalog just read must be HEAD's (git answered while it loaded), the root cause first
            if base is not None:
                base.require_committed_inputs()
        found = units.digests(root, model)
        # the policy judges the model on the other core while the units render (it needs the
        # model alone); its errors still come first, as when it ran before the render. There,
        # before it, the units foreseen render while the plan runs here (units.Early)
        apart = parallel.usable(model, default_jobs())
        ahead = _foreseen(root, model, found, base) if apart else None
        judging = functools.partial(judge_named, model, today or datetime.date.today(), names=names_apart)
        calls: list[Callable[[], Any]] = [judging] if ahead is None else [functools.partial(units.render_fresh, model, ahead), judging]
        with forked.apart_in_turn(calls, wanted=apart) as waiting:
            verdict = _Verdict(None if names_apart else judging, waiting[-1])
            if not apart:
                _refuse(model, verdict())  # judged here already: its errors before any render
            early = None if ahead is None else units.Early(ahead, verdict.judging_while(waiting[0]))
            try:
                result, plan = _render_units(root, model, found, base, proofs, early)
                if meanwhile is not None:
                    meanwhile(model, result, plan)
            except Exception:
                _refuse(model, verdict())
                raise
            judgement = verdict()
        policy = _refuse(model, judgement)
        return Build(root, model, result, policy, frozenset(plan.reused)), plan


def _refuse(model: Model, judgement: Judgement) -> PolicyReport:
    """The policy's report, unless names clash or a rule fails (CatalogErrors)."""
    _refuse_loaded(model.catalog, judgement.clashes)
    assert judgement.policy is not None  # judged: no name clashes
    if judgement.policy.errors:
        raise CatalogErrors(judgement.policy.errors)
    return judgement.policy


class _Verdict:
    """The policy's verdict: judged on the other core after the units foreseen are rendered
    there, unless judged here while they are not rendered yet (this process would only wait:
    a one-tenant edit's plan is done before the fleet-wide global unit is rendered). ``here``
    None: always judged there (the name check without a memo builds a table of every name,
    ~180 MB at 10,000 tenants x 3: not beside this process's plan)."""

    def __init__(self, here: Callable[[], Judgement] | None, apart: Callable[[], Judgement]) -> None:
        self._here, self._apart = here, apart
        self._judged: Judgement | None = None

    def judging_while(self, rendered: forked.Waiter[RenderResult]) -> Callable[[], RenderResult]:
        """``rendered``'s result, the policy judged here first if it is not there yet (its twin
        on the other core is then stopped unfinished: ``forked.apart_in_turn``)."""

        def waited() -> RenderResult:
            if self._here is not None and self._judged is None and not rendered.ready():
                self._judged = self._here()
            return rendered()

        return waited

    def __call__(self) -> Judgement:
        return self._judged if self._judged is not None else self._apart()


def _foreseen(root: Path, model: Model, found: units.Digests, base: Baseline | None) -> frozenset[str] | None:
    """The tenants whose catalog files changed (``units.foreseen``): since the last run (the
    files parsed afresh), or with ``base`` since the base commit (the tenant files whose
    bytes are not the base's)."""
    if base is not None:
        changed = [entry.path for entry in model.catalog.tenants.values() if entry.path not in base.same_tenant_files]
        # the base's global manifest from git's objects: git's proof of the working tree is
        # still running, and the plan (which waits for it) starts the render foreseen no sooner
        return units.foreseen(model, found, changed, lambda unit: base.stored(units.unit_path(unit)))
    parses = model.catalog.parses
    return None if parses is None else units.foreseen(model, found, parses.fresh, units.working_tree(root))


def _render_units(
    root: Path,
    model: Model,
    found: units.Digests,
    base: Baseline | None,
    proofs: checkcache.Proofs | None,
    early: units.Early | None = None,
) -> tuple[RenderResult, units.Plan]:
    """The units whose inputs changed, rendered; the others reused from the working tree's
    manifests (and its files as the stat record vouches for them) or, with ``base``, the
    base commit's. ``early``: the fresh units, if foreseen and rendered already."""
    if base is not None:
        recorded = units.BaseCommit(base)
        # the base's files git proves are on disk unchanged are not read (Baseline.vouch);
        # its unit manifests passed the contract check together when it was merged
        every = units.Fleet(frozenset(base.unit_manifests()), lambda unit, recorded: True)
        # a working-tree manifest git proves the base's (base.vouch) is taken as last decoded
        # by a render, by its stamp (unit_cache): not read at all. Never for --committed (CI's:
        # HEAD's commit from git's objects, whatever the working tree holds)
        decoded = base.head is None
        with unit_cache.Reader(root, found.context, units.shared_entry(model)) if decoded else nullcontext() as cache:
            return units.render_incremental(
                model, root, found, recorded, jobs=default_jobs(), vouch=base.vouch, fleet=every, cache=cache, early=early
            )
    fleet: units.Fleet | None = None
    if proofs is not None and proofs.fleet is not None:  # a unit is the verified fleet's while its manifest holds the bytes verified then
        paths, same = proofs.fleet
        fleet = units.Fleet(paths, lambda unit, recorded: same(units.unit_path(unit), recorded.entries, recorded.raw))
    vouch = proofs.vouch if proofs is not None else None
    # the units as last decoded, by their manifests' stamps: only where stat is trusted
    with unit_cache.Reader(root, found.context, units.shared_entry(model)) if vouch is not None else nullcontext() as cache:
        return units.render_incremental(
            model, root, found, units.working_tree(root), jobs=default_jobs(), vouch=vouch, fleet=fleet, cache=cache, early=early
        )


def waiver_notes(built: Build | Made) -> tuple[str, ...]:
    """The notes ``render`` prints for violations a valid waiver covers (kept in the
    verified-clean record for a render with nothing to do)."""
    return tuple(str(w) for w in built.policy.waived)


@dataclass(frozen=True)
class Rendered:
    """What ``companyos render`` did. ``built`` is None when the tree was already verified
    clean for exactly these inputs (``output.checkcache``): nothing was rendered or written."""

    built: Made | None
    report: tree.WriteReport
    #: Generated files the tree holds now.
    files: int
    #: The policy's waiver notes (from the record when nothing was rendered).
    waived: tuple[str, ...]


def render_tree(
    root: Path | None = None, progress: Callable[[int, int], None] | None = None, *, full: bool = False, inputs: str | None = None
) -> Rendered:
    """``companyos render``: nothing to do when the inputs and the tree are as last verified
    clean (the record is keyed by today's date too, so waiver expiry is never cached past a
    day: ``checkcache.as_last_verified``); else :func:`render_to_disk`. ``inputs``: that
    question's inputs digest when the caller asked it already and the tree was not clean."""
    root = find_root(root or Path.cwd())
    if not full and inputs is None:
        verified, inputs = checkcache.as_last_verified(root, default_jobs(), writer=True)
        if verified is not None:
            return Rendered(None, tree.WriteReport(unchanged=verified.files), verified.files, verified.notes)
    made, report = _render_to_disk(root, progress, full=full, inputs=inputs, keep=Build.made)
    return Rendered(made, report, len(made.result.files), waiver_notes(made))


def render_to_disk(
    root: Path | None = None, progress: Callable[[int, int], None] | None = None, *, full: bool = False, inputs: str | None = None
) -> tuple[Build, tree.WriteReport]:
    """Render into the tree: incrementally (``output.units``), or everything with ``full``.
    ``inputs``: :func:`checkcache.inputs_digest`, when the caller has it already."""
    return _render_to_disk(root, progress, full=full, inputs=inputs, keep=_whole)


def _whole(built: Build) -> Build:
    return built


def _parted(
    built: Build, inputs: str | None, todo: units.Plan | None, keep: Callable[[Build], _Kept]
) -> tuple[_CleanRecord, RenderResult, _Kept]:
    """What the write or the comparison and the record after it need of ``built``, and what
    ``keep`` keeps of it for the caller: once the caller lets ``built`` go, so goes the model
    unless ``keep`` kept it."""
    return _CleanRecord.of(built, inputs, todo), built.result, keep(built)


def _render_to_disk(
    root: Path | None, progress: Callable[[int, int], None] | None, *, full: bool, inputs: str | None, keep: Callable[[Build], _Kept]
) -> tuple[_Kept, tree.WriteReport]:
    """:func:`render_to_disk`, returning what ``keep`` keeps of the build: the rest (the
    model, for :meth:`Build.made`) goes before the write."""
    root = find_root(root or Path.cwd())
    with fewer_collections():  # reading the old manifest allocates a dict per file, too
        # The lock is taken before the recorded units are read: the files reused from the
        # tree are the ones the write compares with, and nobody writes in between.
        with lock.hold(root):
            if full:
                record, result, kept = _parted(build(root, progress=progress), inputs, None, keep)
                report = tree.write(result, root, cache=True)
            else:
                tree.recover(root)  # repaired first: the walk below sees the tree the write will change
                with walk_apart.started(root, tree.OUTPUT_DIRS) as walk:  # the output folders, walked on the other core
                    built, todo = build_incremental(root)
                    record, result, kept = _parted(built, inputs, todo, keep)
                    del built  # kept only as much as ``keep`` keeps
                    # read (or vouched for by stat) under this lock, the reused units' manifests too: equal by
                    # construction; the unit manifests the plan parsed under this lock (the write compares their bytes)
                    report = tree.write(
                        result,
                        root,
                        verified=todo.proven(todo.reused_manifests),
                        parsed=todo.parsed,
                        held=todo.parsed.keys(),
                        cache=True,
                        walked=walk.listing,
                    )
            if not report.unmanaged and not report.kept:  # the tree holds exactly result.files
                record.save(result)
        return kept, report


def check(
    root: Path | None = None, *, use_cache: bool = False, full: bool = True, base: Baseline | None = None
) -> tuple[Build | None, tree.TreeStatus]:
    """Compare the tree with a render: everything with ``full``, else only the tenants whose
    inputs differ from their recorded units (in the tree, or in ``base``: ``check --base``).
    With ``use_cache``, a tree verified clean before and unchanged since (inputs, code and
    outputs hash the same) is reported clean without rendering; the Build is then None (see
    ``output.checkcache``)."""
    kept, status, _ = _check(root, use_cache=use_cache, full=full, base=base, keep=_whole)
    return kept, status


def check_against(
    root: Path | None, base: Baseline, against: Callable[[Model, RenderResult, frozenset[str]], _Compared]
) -> tuple[Build, tree.TreeStatus, _Compared]:
    """``check --base``: :func:`check` against ``base``, and ``against`` (the destruction
    report: model, render, reused tenants) computed with the comparison of the tree while the
    policy is judged on the other core. At 10,000 tenants x 3 that wait was ~0.9 s, and the
    comparison and the report ~1.2 s after it. Their errors come after the policy's."""
    kept, status, compared = _check(root, use_cache=False, full=False, base=base, keep=_whole, against=against)
    assert kept is not None  # --base never takes the cached path
    return kept, status, compared


def check_tree(
    root: Path | None = None, *, use_cache: bool = False, full: bool = True, inputs: str | None = None
) -> tuple[Made | None, tree.TreeStatus]:
    """``companyos check`` without ``--base``: :func:`check`, the model let go before the
    comparison (:class:`Made`). ``inputs``: as for :func:`render_tree`."""
    kept, status, _ = _check(root, use_cache=use_cache, full=full, base=None, keep=Build.made, asked=inputs)
    return kept, status


def _check(
    root: Path | None,
    *,
    use_cache: bool,
    full: bool,
    base: Baseline | None,
    keep: Callable[[Build], _Kept],
    against: Callable[[Model, RenderResult, frozenset[str]], Any] | None = None,
    asked: str | None = None,
) -> tuple[_Kept | None, tree.TreeStatus, Any]:
    """``asked``: with ``use_cache``, the inputs digest of a ``checkcache.as_last_verified``
    the caller made already (the tree was not as last verified)."""
    root = find_root(root or Path.cwd())
    inputs = asked if use_cache else None
    if use_cache and inputs is None:  # never read a tree while it is being written (tree.quiescent)
        verified, inputs = checkcache.as_last_verified(root, default_jobs(), writer=False)
        if verified is not None:
            return None, tree.TreeStatus(unchanged=verified.files), None
    else:
        tree.recover(root)
    with fewer_collections():
        if full and base is None:
            record, result, kept = _parted(build(root), inputs, None, keep)
            compared = None
            with tree.quiescent(root):
                status = tree.status(result, root, cache=True)
        else:
            # the reused files are read under the lock, as compared; the output folders are
            # walked on the other core meanwhile (offered to the cache only without --base).
            # --committed reads HEAD's commit from git's objects instead: nothing to walk
            committed = base is not None and base.head is not None
            walking = nullcontext() if committed else walk_apart.started(root, tree.OUTPUT_DIRS, offer=base is None)
            with tree.quiescent(root), walking as walk:
                # with --base the tree is compared (and ``against`` asked) while the policy is judged;
                # without, after it: that comparison offers the folder listing to the cache
                early: list[tuple[tree.TreeStatus, Any]] = []

                def meanwhile(model: Model, result: RenderResult, todo: units.Plan) -> None:
                    if committed:
                        assert base is not None
                        status = head_status.status(result, base, todo)
                    else:
                        assert walk is not None  # walked unless --committed
                        status = _compare(root, base, result, todo, walk.listing)
                    early.append((status, None if against is None else against(model, result, frozenset(todo.reused))))

                built, todo = build_incremental(root, base, trust_stat=use_cache, meanwhile=None if base is None else meanwhile)
                # the vouched units: carried by the record, used only without --base (no record after --base)
                record, result, kept = _parted(built, inputs, todo, keep)
                del built  # kept only as much as ``keep`` keeps
                if not early:  # without --base: compared after the verdict
                    assert walk is not None
                    early.append((_compare(root, base, result, todo, walk.listing), None))
                status, compared = early[0]
        with tree.quiescent(root):
            # the tree holds exactly these bytes: their sha256s are in the manifest entries. Not
            # after --base: CI's command, in a clone that is thrown away (the record's walk costs
            # ~1.4 s at 1000 tenants x 3, and nobody would ask it)
            if status.clean and base is None:
                record.save(result)
    return kept, status, compared


def _compare(root: Path, base: Baseline | None, result: RenderResult, todo: units.Plan, walked: Callable[[], Listing]) -> tree.TreeStatus:
    """The tree compared with an incremental render, under the lock the caller holds. A reused
    file's bytes were read from this tree under this lock and matched the recorded sha256 (the
    tree's, or with ``base`` the base commit's), or its stat is as when it last verified clean
    (the record's per-unit digest): equal by construction. The plan parsed the working tree's
    manifests under this lock; with ``base`` it parsed the base's, and git proves which of
    them the working tree holds unchanged."""
    held = frozenset(todo.parsed) if base is None else base.proven(todo.parsed)
    return tree.status(
        result,
        root,
        verified=todo.proven(todo.reused_manifests & held),
        parsed=todo.parsed,
        held=held,
        cache=base is None,  # --base writes nothing: CI's command, in a clone thrown away
        walked=walked,
    )
