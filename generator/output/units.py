"""Incremental render: re-render only the units whose inputs changed, verify the others.

A unit is one tenant (its files in every environment) or ``global`` (every fleet-wide
file). Each unit has a manifest, ``rendered/.companyos-units/<unit>.json`` (together the
manifest; no fleet-wide file, so parallel pull requests merge): the digest of its inputs
and, per file, its sha256, manifest entry and declared contracts. A tenant's inputs are its
own files under tenants/; everything else (other catalog files, templates, the
generator's code, output-shaping library versions) is the *context*, recorded once in
``global.json``: a context change re-renders everything. The global unit always renders
(any tenant may touch it; often ahead, on the other core: :class:`Early`). A unit whose
inputs and files still match its manifest is reused as recorded; contracts and limits are
checked over every unit each run, policy runs before.
``check --base`` takes the recorded manifests from the base commit instead of the working
tree: see docs/incremental.md for the trust argument.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Callable, Collection, Container, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, cast, get_type_hints, overload

import msgspec

from generator.catalog.folders import INPUT_DIRS
from generator.catalog.parse_cache import Stamp, stamp_of
from generator.errors import CatalogErrors, Location, UsageError
from generator.formats import emit
from generator.model.resolve import Model
from generator.output import contracts, limits, parallel, unit_cache
from generator.output.checkcache import Vouch  # whether a unit's files hold its recorded bytes, known without reading them
from generator.output.ondisk import TreeFiles
from generator.output.places import Places
from generator.output.render import (
    MANIFEST_VERSION,
    EntryField,
    RenderResult,
    add_output,
    check_contracts,
    contracts_of,
    placeholder_errors,
    render,
    render_by_tenant,
)
from generator.output.slim_entry import SlimEntry, entry_field
from generator.output.spool import Spool, SpooledFiles, Stored, stored_of
from generator.output.spool import made as spool_made
from generator.output.tree import UNITS_DIR, Proven, files_under, read_file
from generator.targets import TARGETS

if TYPE_CHECKING:
    from generator.catalog.snapshot import Baseline

GLOBAL = "global"
#: Bumped when the meaning of a digest changes: every recorded unit is then stale.
UNITS_VERSION = 3
#: Libraries whose version can change the bytes we write.
OUTPUT_LIBRARIES = ("jinja2", "pyyaml", "pydantic", "pydantic-core")
#: Above this share of tenants to render, the ordinary (parallel) full render is used.
FULL_SHARE = 0.5

#: A unit's recorded manifest bytes, or None when there is none (working tree or base commit).
Recorded = Callable[[str], bytes | None]


def unit_of(entry: Mapping[str, Any]) -> str:
    tenant = entry.get("tenant")
    return f"tenant/{tenant}" if isinstance(tenant, str) else GLOBAL


def unit_path(unit: str) -> str:
    return f"{UNITS_DIR}/{unit.replace('/', '-')}.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: :func:`code_digest`'s last answer, by every package file's stat and the library versions:
#: a run asks it twice (the name memo's context, the units' digests), and the ~18 MB of the
#: package are read once per process while none of them changes.
_CODE: dict[tuple[object, ...], str] = {}


def code_digest() -> str:
    """Every file of the ``generator`` package (code, defaults, vendored data) and the
    versions of the libraries that shape output."""
    package = Path(__file__).resolve().parents[1]
    files = sorted(path for path in package.rglob("*") if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc")
    versions = []
    for name in OUTPUT_LIBRARIES:
        try:
            versions.append(f"{name}=={metadata.version(name)};")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}==?;")
    key = (*versions, *((str(path), *_stat_key(path)) for path in files))
    if (known := _CODE.get(key)) is not None:
        return known
    total = hashlib.sha256(f"units-v{UNITS_VERSION}".encode())
    for path in files:
        total.update(path.relative_to(package).as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    for version in versions:
        total.update(version.encode())
    _CODE.clear()
    _CODE[key] = total.hexdigest()
    return _CODE[key]


def _stat_key(path: Path) -> Stamp:
    return stamp_of(path.stat())


@dataclass(frozen=True)
class Digests:
    #: The code, library versions and every input file that is not a tenant's own file.
    context: str
    #: tenant name -> digest of its own catalog file (path and bytes).
    tenants: dict[str, str]


def _owner(rel: str, model: Model, own: Mapping[str, str]) -> str | None:
    """The tenant whose own file ``rel`` is: its catalog file, or any file under tenants/
    named after it (the new-tenant answers, ``tenants/.copier-answers/<name>.yml``). Adding
    a tenant thus leaves the context, and ``global.json``, unchanged."""
    if rel in own:
        return own[rel]
    stem = rel.rpartition("/")[2].partition(".")[0]
    return stem if rel.startswith("tenants/") and stem in model.catalog.tenants else None


def digests(root: Path, model: Model, code: str | None = None) -> Digests:
    """Input digests of the tree at ``root`` as ``model`` (loaded from it) sees it: a file the
    model was built from by the bytes it was built from (``Catalog.read_digests``), any other as it
    is now (new-tenant answers, the tenant scaffold)."""
    own = {entry.path: name for name, entry in model.catalog.tenants.items()}
    built_from = model.catalog.read_digests
    base = os.fspath(root)
    context = hashlib.sha256((code or code_digest()).encode())
    parts: dict[str, list[bytes]] = {}
    for rel in files_under(root, INPUT_DIRS):
        sha = built_from.get(rel)
        if sha is None:
            data = read_file(os.path.join(base, rel))
            sha = hashlib.sha256(b"\0missing" if data is None else data).digest()
        item = rel.encode() + b"\0" + sha
        owner = _owner(rel, model, own)
        if owner is not None:
            parts.setdefault(owner, []).append(item)
        else:
            context.update(item)
    tenants = {name: hashlib.sha256(b"".join(items)).hexdigest() for name, items in parts.items()}
    for name in model.catalog.tenants:
        tenants.setdefault(name, "missing")
    return Digests(context.hexdigest(), tenants)


# --- unit manifests ----------------------------------------------------------------------


def _placed(declared: Mapping[str, contracts.Declared]) -> tuple[list[tuple[str, int, int]], dict[str, contracts.PlacedForm]]:
    """The catalog positions a unit's contracts point at, sorted (recorded once per unit: most
    of its contracts share a handful of lines), and each file's contracts as places and rows
    (``contracts.placed_form``: read from the render's spool, or from the contracts)."""
    forms = {path: contracts.placed_form(provides, consumes) for path, (_, provides, consumes, _) in declared.items()}
    table = sorted({place for places, _, _ in forms.values() for place in places})
    return table, forms


def _rows(form: contracts.PlacedForm, side: int, number: Mapping[tuple[str, int, int], int]) -> list[list[Any]]:
    places, provides, consumes = form
    return [
        [kind, name, scope, detail, None if at is None else number[places[at]]]
        for kind, name, scope, detail, at in (consumes if side else provides)
    ]


#: A file's record on its line: keys sorted, compact (msgspec's C encoder, ~10x ``json.dumps``
#: with sorted keys: ~0.5 s of a cold render at 1,000 tenants).
_RECORD = msgspec.json.Encoder(order="sorted")


def unit_manifest(unit: str, inputs: str, entries: Mapping[str, Mapping[str, Any]], declared: Mapping[str, contracts.Declared]) -> bytes:
    """A unit's manifest: one line per file, sorted, so a diff shows exactly what changed;
    the contracts' catalog positions in one ``places`` table."""
    table, forms = _placed(declared)
    number = {place: i for i, place in enumerate(table)}
    lines = []
    for path in sorted(entries):
        record = dict(entries[path])
        if path in declared:
            form = forms[path]
            record["contracts"] = {"provides": _rows(form, 0, number), "consumes": _rows(form, 1, number), "first": declared[path][3]}
        lines.append(b"    " + json.dumps(path).encode() + b": " + _RECORD.encode(record))
    body = b",\n".join(lines)
    rows = json.dumps([list(place) for place in table], ensure_ascii=False)
    head = f'{{\n  "inputs": {json.dumps(inputs)},\n  "places": {rows},\n  "unit": {json.dumps(unit)},\n  "version": {UNITS_VERSION},\n'
    return head.encode() + b'  "files": {\n' + body + (b"\n" if body else b"") + b"  }\n}\n"


class _Pact(msgspec.Struct):
    """A file's recorded contracts: the rows are left as JSON text, checked and decoded on
    first use (``contracts.RecordedContracts``; msgspec keeps ``Raw`` only in a Struct)."""

    provides: msgspec.Raw
    consumes: msgspec.Raw
    first: str


class _Manifest(TypedDict):
    inputs: str
    unit: str
    version: int
    #: Each file's entry without its contracts, sources and sha256 (the decoder skips them:
    #: :class:`Unit` reads them when asked).
    files: dict[str, SlimEntry]


class _Contracted(msgspec.Struct):
    """A file entry's contracts alone (every other field skipped)."""

    contracts: _Pact | None = None


class _Contracts(msgspec.Struct):
    #: The catalog positions the rows index (only contracts need them: decoded with them).
    places: list[tuple[str, int, int]]
    files: dict[str, _Contracted]


class _Sourced(msgspec.Struct):
    """A file entry's sources alone."""

    sources: list[str] = msgspec.field(default_factory=list)


class _Sources(msgspec.Struct):
    files: dict[str, _Sourced]


class _Hashed(msgspec.Struct):
    """A file entry's sha256 alone (a unit's entry must record one)."""

    sha256: str


class _Shas(msgspec.Struct):
    files: dict[str, _Hashed]


#: Decodes and checks a unit manifest's shape in one C pass (at 10,000 tenants the manifests
#: are ~760 MB of JSON: ``json.loads`` and a Python walk over every row were a sixth of an edit).
#: Contracts (55 % of the bytes) and the places they index are skipped, read by :data:`_CONTRACTS` only when asked;
#: sources too (half of a decoded entry's memory: 465 MB at 10,000 tenants), by :data:`_SOURCES`,
#: and sha256s (a vouched unit's files are proven by stat: 90 MB more), by :data:`_SHAS`.
_DECODER = msgspec.json.Decoder(_Manifest)
_CONTRACTS = msgspec.json.Decoder(_Contracts)
_SOURCES = msgspec.json.Decoder(_Sources)
_SHAS = msgspec.json.Decoder(_Shas)
_T = TypeVar("_T")


@dataclass
class Unit:
    """A unit as recorded: its inputs digest, file entries and (when asked) contracts."""

    #: The unit's name as its manifest says (``tenant/<name>`` or ``global``).
    unit: str
    inputs: str
    #: Path -> entry: decoded, or once merged into the fleet's map (:meth:`merge_into`) a view.
    entries: Mapping[str, Mapping[str, Any]]
    _raw: bytes | None
    _declared: dict[str, contracts.Declared] | None = field(default=None, repr=False)
    #: Once let go (:meth:`let_go`): the manifest's sha256, and where to read it again.
    _sha256: str | None = field(default=None, repr=False)
    _reread: Callable[[], bytes | None] | None = field(default=None, repr=False)
    _sources: dict[str, list[str]] | None = field(default=None, repr=False)
    _shas: dict[str, str] | None = field(default=None, repr=False)

    @property
    def sources(self) -> dict[str, list[str]]:
        """Path -> the catalog files and templates it was rendered from, read from the
        manifest on first use (to blame a limit's breach on a catalog line)."""
        if self._sources is None:
            self._sources = {path: item.sources for path, item in self._decode(_SOURCES, "sources").files.items()}
        return self._sources

    @property
    def shas(self) -> dict[str, str]:
        """Path -> its recorded sha256, read from the manifest on first use (a unit whose
        files are read and hashed; a vouched one's only if someone asks)."""
        if self._shas is None:
            self._shas = {path: item.sha256 for path, item in self._decode(_SHAS, "sha256s").files.items()}
        return self._shas

    def forget_fields(self) -> None:
        """Drop the decoded sha256s and sources: decoded again from the manifest if asked
        (the record asks a few; the limit check only to blame a breach)."""
        self._sources = self._shas = None

    def _decode(self, decoder: msgspec.json.Decoder[_T], what: str) -> _T:
        try:
            return decoder.decode(self.raw)
        except msgspec.MsgspecError:
            raise UsageError(f"{unit_path(self.unit)}: damaged {what}; run `companyos render --full`") from None

    def recorded(self, path: str, field: str) -> Any:
        """A field its entry in :attr:`entries` does not hold: ``sha256`` or ``sources``."""
        return (self.shas if field == "sha256" else self.sources)[path]

    @property
    def raw(self) -> bytes:
        """The manifest's bytes: held, or read again and checked against their sha256 (if
        pinned by it when let go, :meth:`let_go`)."""
        if self._raw is not None:
            return self._raw
        data = self._reread() if self._reread is not None else None
        if data is None or (self._sha256 is not None and hashlib.sha256(data).hexdigest() != self._sha256):
            raise UsageError(f"{unit_path(self.unit)} changed while companyos was reading the tree; run the command again")
        return data

    @property
    def held(self) -> bool:
        return self._raw is not None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = _sha(self.raw)
        return self._sha256

    def merge_into(self, fleet: dict[str, Mapping[str, Any]]) -> None:
        """Move the entries into the fleet's map and keep only their paths (a view over it):
        at 10,000 tenants a dict per unit beside the fleet's was ~45 MB of an edit."""
        fleet.update(self.entries)
        self.entries = _Merged(tuple(self.entries), fleet)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with its manifest's bytes, read again if let go (a result sent to another
        process: where they are read from, a render's spool, does not travel)."""
        state = dict(self.__dict__)
        state["_raw"], state["_reread"] = self.raw, None
        return state

    def let_go(self, reread: Callable[[], bytes | None], *, pin: bool = True) -> None:
        """Stop holding the bytes (a vouched unit's manifest is on disk as parsed: at 10,000
        tenants they are ~740 MB); ``reread`` reads them again if someone asks. ``pin``: hash
        them first, to refuse other bytes read again (the working tree's may change; a base
        commit's are its blob's, checked by their id: ``Baseline.file``)."""
        if pin:
            _ = self.sha256
        self._raw, self._reread = None, reread

    @property
    def declared(self) -> dict[str, contracts.Declared]:
        """Path -> its recorded contracts, read from the manifest on first use: an edit whose
        contract change :func:`contracts.unchanged` proves never reads a reused unit's."""
        if self._declared is None:
            self._declared = self.declared_once()
        return self._declared

    def declared_once(self) -> dict[str, contracts.Declared]:
        """:attr:`declared` without keeping it: the fleet-wide check reads each reused unit's
        contracts once, unit by unit (at 1,000 tenants, kept, they were ~190 MB)."""
        found = self._contracts_now()
        if found is None:  # a unit plan checks what nothing vouched for before reusing it: not expected
            raise UsageError(f"{unit_path(self.unit)}: damaged contracts; run `companyos render --full`")
        return found

    def _contracts_now(self) -> dict[str, contracts.Declared] | None:
        """The contracts as kept, else decoded from the manifest now (and not kept); None when
        they do not decode."""
        if self._declared is not None:
            return self._declared
        try:
            found = _CONTRACTS.decode(self.raw)
        except msgspec.MsgspecError:
            return None
        # kept as rows (contracts.RecordedContracts), decoded and turned into Contracts only when asked
        places = [Location(p, line, col) for p, line, col in found.places]
        return {
            path: (
                path,
                contracts.RecordedContracts(pact.provides, places, path),
                contracts.RecordedContracts(pact.consumes, places, path),
                pact.first,
            )
            for path, item in found.files.items()
            if (pact := item.contracts) is not None
        }

    def decodable(self) -> bool:
        """Whether the sha256s, sources, contracts and every contract row decode (decoding them
        now, keeping none of the contracts: read again, unit by unit, by the fleet's check). A
        unit the stat record vouches for passed when it was verified; any other is asked
        before it is reused."""
        try:
            _ = self.sources, self.shas
        except UsageError:
            return False
        found = self._contracts_now()
        return found is not None and all(
            isinstance(side, contracts.RecordedContracts) and side.decodable() for _, *sides, _ in found.values() for side in sides
        )


class _Merged(Mapping[str, Mapping[str, Any]]):
    """A unit's entries once merged into the fleet's map: its paths, their entries there."""

    __slots__ = ("_fleet", "paths")

    def __init__(self, paths: tuple[str, ...], fleet: Mapping[str, Mapping[str, Any]]) -> None:
        self.paths, self._fleet = paths, fleet

    def __getitem__(self, path: str) -> Mapping[str, Any]:
        if path not in self._fleet or path not in self.paths:
            raise KeyError(path)
        return self._fleet[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)


@functools.lru_cache(maxsize=4)
def _shared_entry(targets: tuple[str, ...], environments: tuple[str, ...]) -> type[SlimEntry]:
    """A file entry whose target and environment must be one of these, and decode to one
    shared string each (at 10,000 tenants 800,000 entries held two copies of their own:
    ~87 MB). Another value is not this catalog's: no valid unit, rendered again."""

    def one_of(names: tuple[str, ...]) -> Any:
        return Literal[names] if names else str

    fields = [(name, one_of(names) | None, None) for name, names in (("target", targets), ("environment", environments))]
    return cast(type[SlimEntry], msgspec.defstruct("_SharedEntry", fields, bases=(SlimEntry,)))  # this catalog's literals


@functools.lru_cache(maxsize=4)
def _shared_values(targets: tuple[str, ...], environments: tuple[str, ...]) -> msgspec.json.Decoder[_Manifest]:
    """:data:`_DECODER`, its entries :func:`_shared_entry`'s."""
    entry: Any = _shared_entry(targets, environments)
    manifest: Any = TypedDict("_SharedManifest", {**get_type_hints(_Manifest), "files": dict[str, entry]})  # type: ignore[misc]
    return msgspec.json.Decoder(manifest)


def shared_values(model: Model) -> msgspec.json.Decoder[_Manifest]:
    """The unit decoder for ``model``'s targets and environments (:func:`_shared_values`)."""
    return _shared_values(*_literals(model))


def shared_entry(model: Model) -> type[SlimEntry]:
    """The entry type of :func:`shared_values` (for ``unit_cache``)."""
    return _shared_entry(*_literals(model))


def _literals(model: Model) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(sorted(t.NAME for t in TARGETS)), tuple(sorted(model.catalog.environments))


def parse_unit(raw: bytes | None, decoder: msgspec.json.Decoder[_Manifest] = _DECODER) -> Unit | None:
    """A recorded unit manifest, or None for anything that is not a valid one (its contracts
    are checked when first read: :meth:`Unit.decodable`). ``decoder``: :data:`_DECODER`, or
    :func:`shared_values`' for a catalog's units."""
    if raw is None:
        return None
    try:
        data = decoder.decode(raw)
    except msgspec.MsgspecError:
        return None
    if data["version"] != UNITS_VERSION:
        return None
    return Unit(data["unit"], data["inputs"], data["files"], raw)


class RecordedUnits:
    """Where the recorded unit manifests come from: the working tree, a base commit, or any
    function of the unit (a full render has none; tests). :func:`plan` reads each manifest
    once through :meth:`first`; a reused unit's files are read from the working tree unless
    :meth:`committed_output` reads a commit's instead."""

    def __init__(self, read: Callable[[str], bytes | None]) -> None:
        self._read = read

    def __call__(self, unit: str) -> bytes | None:
        return self._read(unit)

    def first(self, unit: str) -> bytes | None:
        """The plan's one read of ``unit``'s manifest."""
        return self(unit)

    def committed_output(self) -> Callable[[str], bytes | None] | None:
        """A reader of the checked commit's output files when a commit is checked, not the
        working tree (``check --base --committed``); None: the working tree's files are read."""
        return None


def recorded_units(recorded: Recorded) -> RecordedUnits:
    """``recorded`` as :class:`RecordedUnits` (a plain function reads the working tree's files)."""
    return recorded if isinstance(recorded, RecordedUnits) else RecordedUnits(recorded)


class WorkingTree(RecordedUnits):
    """Recorded units read from the tree at ``root`` (what ``render`` and ``check`` trust):
    a unit manifest read from it under the lock is on disk as read, so :func:`plan` need not
    hold the bytes of one it hashed (with ``check --base`` they are the base's: held)."""

    def __init__(self, root: Path) -> None:
        base = os.fspath(root)
        super().__init__(lambda unit: read_file(os.path.join(base, unit_path(unit))))


def working_tree(root: Path) -> Recorded:
    return WorkingTree(root)


class BaseCommit(RecordedUnits):
    """Recorded units of a base commit (what ``check --base`` trusts): read by their blob id
    (``Baseline.file``: the working tree's bytes checked against it, else git's object),
    except :meth:`first`, the plan's one read of each, which takes the working tree's bytes
    unhashed where git proves them the base's (``Baseline.proven_output``)."""

    def __init__(self, base: Baseline) -> None:
        super().__init__(lambda unit: base.file(unit_path(unit)))
        self._base = base

    def first(self, unit: str) -> bytes | None:
        return self._base.proven_output(unit_path(unit))

    def committed_output(self) -> Callable[[str], bytes | None] | None:
        """With HEAD's commit checked (``Baseline.head``), the base's bytes of an output file,
        checked by blob id, whatever the working tree holds: no output file is then read from
        the working tree unchecked."""
        return self._base.file if self._base.head is not None else None


# --- the incremental render --------------------------------------------------------------


@dataclass
class Plan:
    """Which tenants render, and the recorded units reused (their files stay on disk)."""

    render: set[str]
    reused: dict[str, Unit] = field(default_factory=dict)
    #: Why each rendered tenant renders (for tests and ``--explain``-style output).
    reasons: dict[str, str] = field(default_factory=dict)
    #: Every unit manifest parsed here: path -> its bytes, for the write's previous manifest
    #: (decoded there, sha256s included); None for one vouched for (on disk as parsed, not held).
    parsed: dict[str, bytes | None] = field(default_factory=dict)
    #: Tenants whose reused unit the stat record vouched for: their files and manifest are
    #: not read (:attr:`on_disk`).
    left: set[str] = field(default_factory=set)
    #: Tenants whose reused unit's files were read and hashed here, each matching its recorded
    #: sha256 under the lock: their bytes are not kept either (:attr:`on_disk`; a fresh clone's
    #: no-op render held all 450 MB of them at 1,000 tenants x 3).
    hashed: set[str] = field(default_factory=set)
    #: The result's entries (path -> entry): each reused unit's merged in as the plan accepts
    #: it (:meth:`Unit.merge_into`), the fresh ones added by :func:`render_incremental`, which
    #: also sets :attr:`fresh`, the paths rendered this run.
    entries: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    fresh: Iterable[str] = ()
    #: The last verified fleet's units this run does not reuse (rendered again, or a removed
    #: tenant's), when every reused unit is that fleet's too: the contract check then looks only
    #: at what changed (``contracts.unchanged``). None when that fleet is not known.
    previous: list[Unit] | None = None
    #: The context digest the plan ran in (the unit cache's key).
    context: str = ""
    #: Reused tenants whose manifest's stamp was taken settled, before it was read
    #: (``unit_cache``), and whether one of them was not found in the cache (then it is saved).
    stamps: dict[str, Stamp] = field(default_factory=dict)
    uncached: bool = False

    def keep(self, name: str, stamp: Stamp | None) -> None:
        """A tenant's unit reused without the cache: kept in it when its stamp was settled."""
        if stamp is not None:
            self.stamps[name] = stamp
            self.uncached = True

    def cached_units(self) -> Iterator[unit_cache.Kept]:
        """The reused units with a settled stamp, in tenant order, as ``unit_cache`` keeps them."""
        for name in sorted(self.stamps):
            unit = self.reused[name]
            yield unit_cache.Kept(name, self.stamps[name], unit.sha256, unit.inputs, ((p, self.entries[p]) for p in unit.entries))

    @property
    def vouched(self) -> frozenset[str]:
        """The manifests (paths) of the units in :attr:`left`, vouched for under the lock: the
        next record carries their stat sums (``checkcache.remember_clean``), without stat'ing
        their files again."""
        return frozenset(unit_path(f"tenant/{name}") for name in self.left)

    @property
    def on_disk(self) -> Container[str]:
        """The files (and manifests) of the units vouched for, and the files of those hashed
        (``ondisk.TreeFiles``): those whose entry in the result names a tenant in :attr:`left`
        or :attr:`hashed` (a hashed unit's manifest is held when it was read from the base,
        ``check --base``: ``assemble`` takes a held manifest from memory). A view, not a set
        (at 10,000 tenants a set of their 800,000 paths was ~33 MB)."""
        return _LeftOnDisk(self.entries, self.left, self.hashed)

    def proven(self, manifests: Container[str] = frozenset()) -> Proven:
        """Every reused file (read and hashed here, or vouched for by the stat record), the
        manifests of the units vouched for and those of ``manifests``: the result's entries
        less those rendered this run and the other manifests (``tree.Proven``). Nothing, when
        nothing is reused (a cold render: a set of its 800,000 fresh paths was ~58 MB at 10,000
        tenants, to prove none of them)."""
        if not self.reused:
            return Proven()
        but = {*self.fresh, unit_path(GLOBAL), *(unit_path(f"tenant/{name}") for name in self.render)}
        read = (unit_path(f"tenant/{name}") for name in self.reused if name not in self.left)
        but.update(path for path in read if path not in manifests)
        return Proven(self.entries.keys(), but)

    @property
    def reused_manifests(self) -> frozenset[str]:
        """The reused units' manifests: the result holds the bytes the plan parsed (the
        working tree's when it read the working tree; with ``check --base``, the base's)."""
        return frozenset(unit_path(f"tenant/{name}") for name in self.reused)


class _LeftOnDisk(Container[str]):
    """Whether a path's entry names a tenant in ``vouched`` or ``hashed`` (:attr:`Plan.on_disk`)."""

    __slots__ = ("_entries", "_hashed", "_vouched")

    def __init__(self, entries: Mapping[str, Mapping[str, Any]], vouched: Container[str], hashed: Container[str]) -> None:
        self._entries, self._vouched, self._hashed = entries, vouched, hashed

    def __contains__(self, item: object) -> bool:
        entry = self._entries.get(item) if isinstance(item, str) else None
        if entry is None:
            return False
        tenant = entry.get("tenant")
        return tenant in self._vouched or tenant in self._hashed


@dataclass(frozen=True)
class Fleet:
    """The units last verified together (the contract check passed over all of them at once):
    the working tree's verified-clean record, or the base commit's unit manifests."""

    #: Their manifests' paths.
    paths: frozenset[str]
    #: Whether a recorded unit (name, parsed manifest) is still that fleet's -- its manifest holds
    #: the bytes verified then, so its contracts are the ones checked: the base's always; the
    #: working tree's while the stat record vouches for it or the record's sha256 matches.
    same: Callable[[str, Unit], bool]


def unit_named(path: str) -> str:
    """The unit whose manifest is at ``path`` (the inverse of :func:`unit_path`)."""
    stem = path.removeprefix(UNITS_DIR + "/").removesuffix(".json")
    return GLOBAL if stem == GLOBAL else "tenant/" + stem.removeprefix("tenant-")


def plan(
    root: Path,
    model: Model,
    found: Digests,
    recorded: Recorded,
    vouch: Vouch | None = None,
    fleet: Fleet | None = None,
    cache: unit_cache.Reader | None = None,
) -> Plan:
    """Reuse a tenant's recorded unit only when the context and its own inputs digest the
    same as recorded and every file it lists is on disk with that sha256: read and hashed,
    or vouched for (``vouch``: the verified-clean stat record, or with ``check --base`` git's
    proof). ``fleet``: the units last verified together, for :attr:`Plan.previous`. ``cache``:
    the working tree's units as last decoded, by their manifest's stamp (never for
    ``--committed``): a vouched unit found there is not read at all."""
    tenants = sorted(model.catalog.tenants)
    decoder = shared_values(model)
    glob = parse_unit(recorded(GLOBAL), decoder)
    if glob is None or glob.inputs != found.context:
        why = "no recorded global unit" if glob is None else "the context changed (code, libraries or a shared input)"
        return Plan(set(tenants), reasons=dict.fromkeys(tenants, why))
    out = Plan(set(), context=found.context)
    out.parsed[unit_path(GLOBAL)] = glob.raw
    base = os.fspath(root)
    history = _History(fleet)
    history.rendered(GLOBAL, glob)
    recorded = recorded_units(recorded)
    first = recorded.first  # each manifest's one read here
    committed = recorded.committed_output() is not None
    for name in tenants:
        path = unit_path(f"tenant/{name}")
        stamp = unit_cache.stamp(root, path) if cache is not None else None  # taken before the manifest is read
        hit = cache.get(name, stamp) if cache is not None and stamp is not None else None
        if (
            hit is not None
            and stamp is not None
            and vouch is not None
            and hit.inputs == found.tenants[name]
            and out.entries.keys().isdisjoint(hit.entries)
            and vouch(path, hit.entries)
        ):
            _left_on_disk(out, history, name, Unit(f"tenant/{name}", hit.inputs, hit.entries, None, _sha256=hit.sha256), recorded)
            out.stamps[name] = stamp
            continue
        unit = parse_unit(first(f"tenant/{name}"), decoder)
        if unit is None:
            out.render.add(name)
            out.reasons[name] = "no recorded unit"
            history.rendered(f"tenant/{name}", None)
            continue
        out.parsed[unit_path(f"tenant/{name}")] = unit.raw  # let go if vouched for
        if unit.inputs != found.tenants[name]:
            out.render.add(name)
            out.reasons[name] = "its inputs changed"
            history.rendered(f"tenant/{name}", unit)
            continue
        if not _all_of(name, unit.entries, out.entries):
            out.render.add(name)
            out.reasons[name] = "its manifest lists another tenant's file"
            history.rendered(f"tenant/{name}", unit)
            continue
        if vouch is not None and vouch(path, unit.entries):
            _left_on_disk(out, history, name, unit, recorded)
            out.keep(name, stamp)
            continue
        if committed:  # HEAD's files: never read from the working tree
            out.render.add(name)
            out.reasons[name] = "the commit changed a file it lists"
            history.rendered(f"tenant/{name}", unit)
            continue
        if not unit.decodable():
            out.render.add(name)
            out.reasons[name] = "its manifest's sha256s, sources, places or contract rows are damaged"
            history.rendered(f"tenant/{name}", None)
            continue
        shas = unit.shas
        for path in unit.entries:
            data = read_file(os.path.join(base, path))
            if data is None or _sha(data) != shas.get(path):
                break
        else:
            unit.forget_fields()  # checked and used: at 10,000 tenants ~700 MB if kept
            if isinstance(recorded, WorkingTree):  # on disk as read: at 10,000 tenants ~760 MB of bytes if held
                out.parsed[unit_path(f"tenant/{name}")] = None
                unit.let_go(functools.partial(recorded, f"tenant/{name}"))
            out.reused[name] = unit
            out.hashed.add(name)
            unit.merge_into(out.entries)
            history.reused(f"tenant/{name}", unit, vouched=False)
            out.keep(name, stamp)
            continue
        out.render.add(name)
        out.reasons[name] = "a file differs from its recorded sha256"
        history.rendered(f"tenant/{name}", unit)
    out.previous = history.previous(recorded)
    return out


def _left_on_disk(out: Plan, history: _History, name: str, unit: Unit, recorded: Recorded) -> None:
    """Reuse tenant ``name``'s vouched-for unit: its manifest and files stay on disk, read
    again only if asked."""
    out.reused[name] = unit
    out.left.add(name)
    out.parsed[unit_path(f"tenant/{name}")] = None
    # a base commit's manifest is its blob, read again by its id: not hashed unless asked (with
    # --base nothing asks, and at 10,000 tenants x 3 hashing them was ~0.35 s; assemble)
    unit.let_go(functools.partial(recorded, f"tenant/{name}"), pin=isinstance(recorded, WorkingTree))
    unit.merge_into(out.entries)
    history.reused(f"tenant/{name}", unit, vouched=True)


def _all_of(tenant: str, entries: Mapping[str, Mapping[str, Any]], taken: Mapping[str, Any] | None = None) -> bool:
    """Whether every entry names ``tenant`` and no path is ``taken`` (listed by a unit the
    plan reuses already): the units then partition the files (``checkcache`` relies on it).
    Each entry then holds this one name, and entries equal field for field are one record
    (without sha256 and sources a tenant's ~80 entries are a few dozen kinds: at 10,000
    tenants, 800,000 dicts and names were ~200 MB; ``slim_entry``). Entries are never
    changed after the plan: sharing them is safe."""
    assert isinstance(entries, dict), "asked of a unit as parsed, before Unit.merge_into"  # narrows the type
    if taken is not None and not taken.keys().isdisjoint(entries):  # in C: ~0.1-0.2 s less at 10,000 x 3
        return False
    kinds: dict[tuple[Any, ...], SlimEntry] = {}
    for path, entry in entries.items():
        if not isinstance(entry, SlimEntry) or entry.tenant != tenant:
            return False
        entry.tenant = tenant
        if entry.limits is None:  # the only field that is not a string (rare: a file near a limit)
            entries[path] = kinds.setdefault(entry.kind(), entry)
    return True


class _History:
    """Collects, while :func:`plan` runs, the last verified fleet's units that are not reused,
    and whether every reused unit is that fleet's (else :attr:`Plan.previous` is None)."""

    def __init__(self, fleet: Fleet | None) -> None:
        self.fleet = fleet
        self.known = fleet is not None
        self.seen: set[str] = set()
        self.units: list[Unit] = []

    def rendered(self, unit: str, recorded: Unit | None) -> None:
        """``unit`` renders again; ``recorded``: its manifest now (None: there is none)."""
        path = unit_path(unit)
        self.seen.add(path)
        if self.fleet is None or path not in self.fleet.paths:
            return  # not in the old fleet: nothing of it was relied on
        if recorded is None or not self.fleet.same(unit, recorded):
            self.known = False  # the old fleet had this unit, and what it held is not known now
        else:
            self.units.append(recorded)

    def reused(self, unit: str, recorded: Unit, *, vouched: bool) -> None:
        path = unit_path(unit)
        self.seen.add(path)
        if self.fleet is None or path not in self.fleet.paths or not (vouched or self.fleet.same(unit, recorded)):
            self.known = False

    def previous(self, recorded: Recorded) -> list[Unit] | None:
        """The old fleet's units not reused, a removed tenant's included; None when not known."""
        if self.fleet is None:
            return None
        for path in sorted(self.fleet.paths - self.seen):  # a removed tenant's unit: its producers count as withdrawn
            if not self.known:
                break
            unit = parse_unit(recorded(unit_named(path)))
            if unit is None or not self.fleet.same(unit_named(path), unit):
                self.known = False
            else:
                self.units.append(unit)
        return self.units if self.known else None


def render_fresh(model: Model, tenants: frozenset[str]) -> RenderResult:
    """The global unit and ``tenants``' units rendered (no other tenant's), as
    :func:`render_incremental` renders a few of them when it reuses the others."""
    return render(dataclasses.replace(model, rendering=tenants), jobs=1, check=False)


def foreseen(model: Model, found: Digests, changed: Iterable[str], recorded: Recorded) -> frozenset[str] | None:
    """The tenants :func:`plan` will render when ``changed`` (catalog files new or changed
    since the ``recorded`` units were made) are all that changed: their tenants, when each
    is a tenant's own file, they are a few and the context is the recorded global unit's;
    else None. A guess the plan never relies on (:class:`Early`)."""
    own = {entry.path: name for name, entry in model.catalog.tenants.items()}
    tenants = {own.get(rel) for rel in changed}
    if None in tenants or len(tenants) > FULL_SHARE * max(1, len(model.catalog.tenants)):
        return None
    glob = parse_unit(recorded(GLOBAL), shared_values(model))
    return frozenset(cast(set[str], tenants)) if glob is not None and glob.inputs == found.context else None


@dataclass(frozen=True)
class Early:
    """:func:`render_fresh` of ``tenants``, started before the plan ran (on the other core,
    ``forked.apart_in_turn``): :func:`render_incremental` takes it only when the plan
    renders exactly these tenants and reuses the others, so it is the render it would make."""

    tenants: frozenset[str]
    result: Callable[[], RenderResult]


def render_incremental(
    model: Model,
    root: Path,
    found: Digests,
    recorded: Recorded,
    jobs: int = 1,
    vouch: Vouch | None = None,
    fleet: Fleet | None = None,
    cache: unit_cache.Reader | None = None,
    early: Early | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[RenderResult, Plan]:
    """Render the global unit and every tenant the plan needs; reuse the rest. The result
    is byte-identical to a full render (tested) and includes every unit's manifest.
    ``cache``: :func:`plan`'s. ``early``: the fresh units, if rendered already."""
    todo = plan(root, model, found, recorded, vouch, fleet, cache)
    few = len(todo.render) <= FULL_SHARE * max(1, len(model.catalog.tenants))
    entries = todo.entries  # the reused units' entries, merged by the plan
    spool = None if few or not parallel.usable(model, jobs) else spool_made()
    files: MutableMapping[str, Stored]
    if spool is not None:  # a large render: each tenant's unit made as its chunk is done, its entries kept slim
        made = _render_by_tenant(model, found, todo.render, jobs, entries, spool, progress)
        files, declared, fresh_paths, todo.fresh = made.files, made.declared, made.fleet, made.paths
        reused = {**todo.reused, **made.units}
        proven = False
    else:
        files, declared, fresh_paths, spool = _render_fresh(model, todo, jobs, few, early, progress)
        todo.fresh = fresh_paths  # Plan.on_disk and Plan.proven: views over them and the entries
        reused = todo.reused
        # the reused units passed the contract check together with todo.previous: only the change is judged
        proven = todo.previous is not None and contracts.unchanged(
            list(declared.values()),
            [d for unit in todo.previous for d in unit.declared.values()],
            (d for unit in reused.values() for d in unit.declared.values()),
        )
    errors = [
        *([] if proven else check_contracts(declared.values(), entries, lambda: (u.declared_once().values() for u in reused.values()))),
        # every file's facts as recorded in its entry: the fresh ones' by finalize, the reused ones' in their unit
        *limits.judge(
            model,
            [limits.recorded(p, e) for p, e in entries.items() if entry_field(e, "limits") is not None],
            EntryField(entries, "sources", recorded=ReusedFields(reused)),
            every_declared(declared, reused.values()),  # read only to blame a breach
        ),
    ]
    if errors:
        raise CatalogErrors(errors)
    shown = todo if reused is todo.reused else dataclasses.replace(todo, reused=reused)  # assemble takes a made unit as it lies
    left = recorded_units(recorded).committed_output()
    return assemble(model, found, files, entries, declared, shown, root, fresh=fresh_paths, spool=spool, left=left), todo


def _render_fresh(
    model: Model, todo: Plan, jobs: int, few: bool, early: Early | None, progress: Callable[[int, int], None] | None
) -> tuple[dict[str, Stored], dict[str, contracts.Declared], list[str], Spool | None]:
    """The plan's tenants and the global unit rendered at once (a few tenants, or a small
    catalog): their files, contracts and paths, their entries added to the plan's; the spool
    the workers spilled to, if any."""
    if early is not None and todo.reused and early.tenants == todo.render:  # a few: render_fresh's one job
        fresh = early.result()
    else:
        scoped = dataclasses.replace(model, rendering=frozenset(todo.render)) if todo.reused else model
        fresh = render(scoped, jobs=1 if few else jobs, progress=progress, check=False)
    entries = todo.entries
    fresh_files, spool = stored_of(fresh.files)  # a spilled file is taken as it lies: not read back
    files: dict[str, Stored] = {}
    declared: dict[str, contracts.Declared] = {}
    fresh_declared = {d[0]: d for d in fresh.declared}
    fresh_paths: list[str] = []
    for path, entry in fresh.manifest["files"].items():
        tenant = entry.get("tenant")
        if tenant is not None and tenant not in todo.render:
            continue  # a target without the `wanted` guard rendered it anyway: use the recorded one
        _refuse_listed_twice(entries, path, entry)
        entries[path] = entry
        fresh_paths.append(path)
        files[path] = fresh_files[path]
        if path in fresh_declared:
            declared[path] = fresh_declared[path]
    return files, declared, fresh_paths, spool


def _refuse_listed_twice(entries: Mapping[str, Mapping[str, Any]], path: str, entry: Mapping[str, Any]) -> None:
    """A fresh file a reused unit lists too: that unit's manifest was edited by hand."""
    if path in entries:
        owner = unit_path(unit_of(entries[path]))
        raise UsageError(f"{owner} lists {path}, which {unit_path(unit_of(entry))} renders; run `companyos render --full`")


@dataclass
class _Made:
    """What :func:`_render_by_tenant` rendered: every file's bytes or spool place (the tenants'
    unit manifests' too), the fleet-wide files' contracts and paths, every path rendered,
    and each tenant's unit as its manifest records it (read again from the spool when asked)."""

    files: Places
    declared: dict[str, contracts.Declared] = field(default_factory=dict)
    fleet: list[str] = field(default_factory=list)
    units: dict[str, Unit] = field(default_factory=dict)

    @property
    def paths(self) -> Iterable[str]:
        """Every path rendered: the fleet-wide files', then each tenant's in its unit's own
        tuple (a list of them all was 6.4 MB at 10,000 tenants x 3; only a plan that reuses
        some units iterates it, :meth:`Plan.proven`)."""
        return _Chained(self.fleet, self.units)


class _Chained(Iterable[str]):
    """The fleet-wide paths, then each unit's (iterable again and again, not a one-pass chain)."""

    __slots__ = ("_fleet", "_units")

    def __init__(self, fleet: list[str], units: Mapping[str, Unit]) -> None:
        self._fleet, self._units = fleet, units

    def __iter__(self) -> Iterator[str]:
        yield from self._fleet
        for unit in self._units.values():
            yield from _paths(unit.entries)


def _render_by_tenant(
    model: Model,
    found: Digests,
    tenants: Collection[str],
    jobs: int,
    entries: dict[str, Mapping[str, Any]],
    spool: Spool,
    progress: Callable[[int, int], None] | None = None,
) -> _Made:
    """The global unit and ``tenants``' units rendered a chunk at a time (``render.render_by_tenant``).
    Each tenant's unit manifest is made, spilled and decoded again, slim, as soon as its chunk
    is done (a reused unit's form: the sha256s, sources and contracts stay in the manifest),
    so the fleet's full records are never held together (~1 GB at 10,000 tenants x 3)."""
    made = _Made(Places(entries))  # a tenant's places packed beside its paths once its unit is made
    placeholders = []
    decoder = shared_values(model)
    for tenant, items in render_by_tenant(model, tenants, jobs, spool, progress):
        members: dict[str, dict[str, Any]] = {}
        declared: dict[str, contracts.Declared] = {}
        for path, data, entry, decl, _ in items:  # the limit facts are in the entry too (finalize)
            if path not in made.files:  # rendered twice this run: add_output names both targets
                _refuse_listed_twice(entries, path, entry)
            add_output(made.files, entries, path, data, entry)
            members[path] = entry
            if (held := contracts_of(decl, spool)) is not None:
                declared[path] = held
        placeholders.extend(placeholder_errors({path: made.files[path] for path in members}))
        if tenant is None:
            made.fleet.extend(members)
            made.declared.update(declared)
            continue
        name = f"tenant/{tenant}"
        data = unit_manifest(name, found.tenants.get(tenant, "missing"), members, declared)
        unit = parse_unit(data, decoder)
        if unit is None:
            raise AssertionError(f"{unit_path(name)} as made does not decode")  # a bug, never the catalog's
        for path in members:
            del entries[path]  # the full records go: the unit's slim ones take their place
        slim = unit.entries
        _all_of(tenant, slim)  # as the plan keeps a reused unit's: one name, entries equal field for field one record
        unit.merge_into(entries)
        # by the decoded paths (the entries' keys): the worker's copies go with the records
        made.files.pack(tenant, _paths(unit.entries))
        where = spool.put(data)
        if isinstance(where, int):  # spilled (else held: the spool could not take it)
            unit.let_go(functools.partial(spool.get, where))
        made.files[unit_path(name)] = where
        made.units[tenant] = unit
    if placeholders:
        raise CatalogErrors(placeholders)
    return made


class ReusedFields:
    """A reused file's fields its entry does not hold (sha256, sources), read from its unit's
    manifest when asked: the record asks for few sha256s, the limit check for sources only
    to blame a breach (``render.Recorded``)."""

    def __init__(self, reused: Mapping[str, Unit]) -> None:
        self._reused = reused
        self._last: Unit | None = None

    def __call__(self, path: str, entry: Mapping[str, Any], field: str) -> Any:
        unit = self._reused.get(entry.get("tenant", ""))  # the plan checked a reused unit's entries all name it
        if unit is None:
            raise KeyError(path)
        if unit is not self._last:  # the record asks unit by unit: one unit's decoded fields held at a time
            if self._last is not None:
                self._last.forget_fields()  # at 10,000 tenants every unit's sha256s, kept, were ~150 MB
            self._last = unit
        return unit.recorded(path, field)


def _path(declared: contracts.Declared) -> str:
    return declared[0]


def every_declared(fresh: Mapping[str, contracts.Declared], reused: Iterable[Unit]) -> Iterator[contracts.Declared]:
    """The fresh files' contracts, then the reused units': each unit's read from its manifest
    only when this gets that far."""
    yield from fresh.values()
    for unit in reused:
        yield from unit.declared.values()


class InPathOrder(Sequence[contracts.Declared]):
    """Every file's contracts in path order, gathered on first use (``RenderResult.declared``
    of an incremental render: the edit itself never asks for the reused units')."""

    def __init__(self, gather: Callable[[], Iterable[contracts.Declared]]) -> None:
        self._gather: Callable[[], Iterable[contracts.Declared]] | None = gather
        self._items: tuple[contracts.Declared, ...] = ()

    def _all(self) -> tuple[contracts.Declared, ...]:
        if self._gather is not None:
            self._items, self._gather = tuple(sorted(self._gather(), key=_path)), None
        return self._items

    @overload
    def __getitem__(self, index: int) -> contracts.Declared: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[contracts.Declared]: ...
    def __getitem__(self, index: int | slice) -> contracts.Declared | Sequence[contracts.Declared]:
        return self._all()[index]

    def __iter__(self) -> Iterator[contracts.Declared]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __reduce__(self) -> tuple[type[tuple[contracts.Declared, ...]], tuple[tuple[contracts.Declared, ...]]]:
        return tuple, (self._all(),)  # pickled as the tuple it stands for (a result sent to a process)


def assemble(
    model: Model,
    found: Digests,
    files: MutableMapping[str, Stored],
    entries: dict[str, Mapping[str, Any]],
    declared: Mapping[str, contracts.Declared],
    todo: Plan,
    root: Path | None = None,
    fresh: Iterable[str] | None = None,
    spool: Spool | None = None,
    left: Callable[[str], bytes | None] | None = None,
) -> RenderResult:
    """Add every unit's manifest (recorded bytes for a reused unit). There is no fleet-wide
    manifest file: it would change with every tenant added (``RenderResult.manifest`` still
    holds every entry in memory). ``fresh``: the entries rendered this run; a reused unit's
    are grouped already (``Plan.reused``: the plan checked every one is that tenant's).
    ``spool``: where the render spilled the files ``files`` does not hold. ``left``: how a
    reused file is read when asked (default: from the tree at ``root``)."""
    rendered: dict[str, dict[str, Mapping[str, Any]]] = {GLOBAL: {}}
    rendered.update({f"tenant/{name}": {} for name in model.catalog.tenants})
    for path in entries if fresh is None else fresh:
        entry = entries[path]
        rendered.setdefault(unit_of(entry), {})[path] = entry
    by_unit: dict[str, Mapping[str, Mapping[str, Any]]] = dict(rendered)
    if fresh is not None:
        by_unit.update({f"tenant/{name}": unit.entries for name, unit in todo.reused.items()})
    listed = {unit_path(unit): _paths(members) for unit, members in by_unit.items() if members}
    for unit, members in by_unit.items():
        name = unit.removeprefix("tenant/")
        reused = todo.reused.get(name) if unit != GLOBAL else None
        path = unit_path(unit)
        if reused is not None and not reused.held:  # on disk as parsed (Plan.on_disk): not read again
            entries[path] = _LeftManifest(reused, name)
            continue
        if reused is not None:
            data = reused.raw
        else:
            inputs = found.context if unit == GLOBAL else found.tenants.get(name, "missing")
            data = unit_manifest(unit, inputs, members, {p: declared[p] for p in members if p in declared})
        sha = _sha(data)
        # with a spool (a large render) the manifest waits there too: ~60 KB a tenant
        files[path] = data if spool is None or reused is not None else spool.put(data)
        entries[path] = _own_entry(sha, None if unit == GLOBAL else name)
    order = sorted(entries)  # sorted once: the entries list every file, held or left on disk
    # the entries as they came (a full render's in path order, then the units'): nothing reads
    # them in order, and re-inserting 800,000 of them in path order cost ~0.8 s at 10,000 tenants
    manifest = {"generator": emit.GENERATOR, "version": MANIFEST_VERSION, "files": entries}
    ordered = InPathOrder(lambda: every_declared(declared, todo.reused.values()))
    if (todo.left or todo.hashed) and root is not None:
        on_disk = TreeFiles(root, files, todo.on_disk, order, spool, read=left)
        return RenderResult(on_disk, manifest, ordered, listed, ReusedFields(todo.reused))
    # a spooled render's map as it is, with its paths in order beside it (not copied in that order)
    out: Mapping[str, bytes] = (
        SpooledFiles(files, spool, order) if spool is not None else cast(dict[str, bytes], {p: files[p] for p in order})
    )
    return RenderResult(out, manifest, ordered, listed, ReusedFields(todo.reused) if todo.reused else None)


def _own_entry(sha256: str, tenant: str | None) -> dict[str, Any]:
    """A unit manifest's own entry (the global unit's names no tenant)."""
    own: dict[str, Any] = {"sha256": sha256, "sources": [], "target": "units"}
    if tenant is not None:
        own["tenant"] = tenant
    return own


class _LeftManifest(Mapping[str, Any]):
    """:func:`_own_entry` of a reused unit's manifest left on disk, its sha256 the unit's,
    hashed when first asked (:meth:`Unit.let_go`); the other fields asked of it are made anew."""

    __slots__ = ("_tenant", "_unit")

    def __init__(self, unit: Unit, tenant: str) -> None:
        self._unit, self._tenant = unit, tenant

    def __getitem__(self, key: str) -> Any:
        return self._unit.sha256 if key == "sha256" else _own_entry("", self._tenant)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_own_entry("", self._tenant))

    def __len__(self) -> int:
        return len(_own_entry("", self._tenant))


def _paths(members: Mapping[str, Any]) -> Sequence[str]:
    """A unit's file paths: a merged unit's own tuple (shared), else listed afresh."""
    return members.paths if isinstance(members, _Merged) else list(members)


def membership(result: RenderResult) -> Mapping[str, Sequence[str]]:
    """Unit manifest path -> the files that unit lists (for the stat record): as assembled,
    else from the manifest entries."""
    if result.members is not None:
        return result.members
    out: dict[str, list[str]] = {}
    for path, entry in result.manifest["files"].items():
        if entry.get("target") != "units":
            out.setdefault(unit_path(unit_of(entry)), []).append(path)
    return out


def unit_paths(paths: Iterable[str]) -> list[str]:
    return [p for p in paths if p.startswith(UNITS_DIR + "/")]
