"""Run every target over the resolved model: ``Model -> {path: bytes}``.

Pure and deterministic: no I/O, no clocks, no environment, and outputs sorted by path.
The result holds the manifest (in memory; ``output.units`` writes it as one file per unit),
which records every generated file with its sha256, the sources it came from (a fleet-wide
file names tenant files as one pattern) and the tenant/environment/Terraform root it
belongs to: what lets ``tree`` prune only files we generated and ``affected`` map changed
files back to roots and tenants.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Collection, Iterable, Iterator, KeysView, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from generator.errors import CatalogError, CatalogErrors, Location
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model import naming
from generator.model.resolve import Model
from generator.output import contracts, limits, parallel
from generator.output.parallel import Finished
from generator.output.spool import Spool, SpooledFiles, Stored
from generator.output.spool import made as spool_made
from generator.targets import TARGETS
from generator.targets.base import RenderedFile, Target

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class RenderResult:
    """Everything one render produced, manifest included."""

    #: Path -> bytes, in path order (a dict; after a parallel render ``spool.SpooledFiles``;
    #: after an incremental render that leaves files on disk ``ondisk.TreeFiles``).
    files: Mapping[str, bytes]
    #: ``files`` maps every path to its entry; in no promised order (``units.assemble``).
    manifest: dict[str, Any] = field(repr=False)
    #: What each file provides and consumes (output/contracts.py), in path order.
    declared: Sequence[contracts.Declared] = field(default=(), repr=False, compare=False)
    #: Unit manifest path -> the files that unit lists, when the units were assembled
    #: (``output.units``); else None.
    members: Mapping[str, Sequence[str]] | None = field(default=None, repr=False, compare=False)
    #: Fields a reused file's entry does not hold (its sha256, its sources), read from its
    #: unit's manifest when asked (``units.ReusedFields``); None when every entry is whole.
    recorded: Recorded | None = field(default=None, repr=False, compare=False)

    @property
    def paths(self) -> KeysView[str]:
        """Every path rendered: the manifest's entries' keys, asked of a plain map (a large
        render's ``files`` finds a path through its unit, ``output.places``)."""
        files: dict[str, Mapping[str, Any]] = self.manifest["files"]
        return files.keys()

    def entry(self, path: str) -> Mapping[str, Any] | None:
        entry: Mapping[str, Any] | None = self.manifest["files"].get(path)
        return entry

    def shas(self) -> Mapping[str, str]:
        """Every file's sha256 (hex) as its manifest entry records it, in path order."""
        return EntryField(self.manifest["files"], "sha256", self.files, self.recorded)


#: (path, its entry, a field the entry does not hold) -> that field's value as recorded.
Recorded = Callable[[str, Mapping[str, Any], str], Any]


class EntryField(Mapping[str, Any]):
    """Path -> one field of its manifest entry, looked up when asked: after a one-tenant edit
    at 10,000 tenants the record and the limit check read a handful, and a copy of 800,000
    values cost ~0.3 s each. ``paths``: the keys, in their order (default: the entries');
    ``recorded``: where a field an entry does not hold is read from."""

    def __init__(
        self,
        entries: Mapping[str, Mapping[str, Any]],
        field: str,
        paths: Collection[str] | None = None,
        recorded: Recorded | None = None,
    ) -> None:
        self._entries = entries
        self._field = field
        self._paths = entries if paths is None else paths
        self._recorded = recorded

    def __getitem__(self, path: str) -> Any:
        entry = self._entries[path]
        if self._field in entry or self._recorded is None:
            return entry[self._field]
        return self._recorded(path, entry, self._field)

    def __contains__(self, path: object) -> bool:
        return path in self._paths  # not Mapping's: that reads the field, perhaps from a unit's manifest

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


def render(
    model: Model,
    targets: Iterable[Target] | None = None,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
    *,
    check: bool = True,
) -> RenderResult:
    """Render ``model`` with every target (or the given ones), on up to ``jobs`` processes
    for a large catalog (``parallel``); the bytes are the same for any ``jobs``. With ``check``
    (and every target), broken contracts and consumer limits raise CatalogErrors."""
    chosen = list(targets if targets is not None else TARGETS)
    files: dict[str, Stored] = {}
    entries: dict[str, Mapping[str, Any]] = {}
    declared: list[contracts.Declared] = []
    found: list[limits.Facts] = []
    # Every target's render records each file's limit facts in its entry (the unit manifests
    # keep them) and, with ``check``, judges them; a partial render has half the producers
    # and examines nothing.
    finish = finalize if targets is None else _finalize_unexamined
    check = check and targets is None
    spool: Spool | None = None
    if parallel.usable(model, jobs):
        spool = spool_made()  # the workers spill each file's bytes there: none is held in memory
        produced = parallel.render_parallel(model, chosen, jobs, finish, progress, spool, holds_placeholder)
    else:
        produced = _serial(model, chosen, progress, finish)
    for path, data, entry, decl, facts in produced:
        add_output(files, entries, path, data, entry)
        if (held := contracts_of(decl, spool)) is not None:
            declared.append(held)
        if facts is not None:
            found.append(facts)
    declared.sort(key=lambda d: d[0])
    placeholders = placeholder_errors(files)
    if placeholders:
        raise CatalogErrors(placeholders)
    if check:
        errors = [*check_contracts(declared, entries), *limits.judge(model, found, {p: e["sources"] for p, e in entries.items()}, declared)]
        if errors:
            raise CatalogErrors(errors)
    manifest = {
        "generator": emit.GENERATOR,
        "version": MANIFEST_VERSION,
        "files": dict(sorted(entries.items())),
    }
    # No manifest file here: ``output.units`` writes one per unit (MANIFEST_PATH is what
    # trees rendered before units hold; ``tree.read_manifest`` reads it, the next render prunes it).
    ordered = dict(sorted(files.items()))
    # a serial render holds every file's bytes: a plain dict
    out: Mapping[str, bytes] = SpooledFiles(ordered, spool) if spool is not None else cast(dict[str, bytes], ordered)
    return RenderResult(out, manifest, tuple(declared))


#: Tenants a large full render takes at a time (:func:`render_by_tenant`): the parent holds
#: one chunk's file records (~66 MB at 1,000 tenants x 3), and each later chunk renders the
#: fleet-wide files again only to drop them. 250 held less (1,000 x 3: 135 MB peak, not
#: 179) but took 311 s instead of 203 s at 10,000 x 3: those files grow with the fleet.
CHUNK_TENANTS = 1000


def render_by_tenant(
    model: Model, tenants: Collection[str], jobs: int, spool: Spool, progress: Callable[[int, int], None] | None = None
) -> Iterator[tuple[str | None, list[Finished]]]:
    """Every fleet-wide file and ``tenants``' own files, on ``jobs`` processes spilling to
    ``spool`` (``parallel.usable`` must hold), :data:`CHUNK_TENANTS` at a time: (None, the
    fleet-wide files) first, then (tenant, its files) for each tenant with files, as soon as
    its chunk is done. Unchecked: the caller judges contracts and limits (``units``)."""
    names = sorted(tenants)
    chunks = [frozenset(names[i : i + CHUNK_TENANTS]) for i in range(0, len(names), CHUNK_TENANTS)] or [frozenset()]
    for items in parallel.render_in_chunks(model, TARGETS, jobs, finalize, chunks, progress, spool, holds_placeholder):
        grouped: dict[str | None, list[Finished]] = {}
        for item in items:
            grouped.setdefault(item[2].get("tenant"), []).append(item)
        # let go here too: held through the yields below, it kept every record of the chunk alive
        # until its last tenant was taken (~66 MB a chunk at 1,000 tenants x 3)
        del items
        for tenant in sorted(grouped, key=lambda name: (name is not None, name or "")):
            yield tenant, grouped.pop(tenant)


def check_contracts(
    declared: Iterable[contracts.Declared],
    entries: Mapping[str, Mapping[str, Any]],
    reused: Callable[[], Iterable[Iterable[contracts.Declared]]] = tuple,
) -> list[CatalogError]:
    """The fleet's contract check a tenant at a time (``contracts.check_by_unit``): the files
    grouped by the tenant their entries name, the fleet-wide ones shared; ``reused()``: more
    units, each read again for every pass (an incremental render's reused units, from their
    manifests). A spooled render's contracts are read one tenant's files at a time too."""
    groups: dict[str, list[contracts.Declared]] = {}
    for item in declared:
        groups.setdefault(entries[item[0]].get("tenant") or "", []).append(item)
    shared = groups.pop("", [])
    tenants = list(groups.values())
    return contracts.check_by_unit(shared, lambda: itertools.chain(tenants, reused()))


_PLACEHOLDER = b"<account:"


def holds_placeholder(data: bytes) -> bool:
    """Whether a file may hold a vended account's placeholder: such a file is kept in memory
    by a spilling worker, so :func:`placeholder_errors` finds it among the held ones."""
    return _PLACEHOLDER in data


def placeholder_errors(files: Mapping[str, Stored]) -> list[CatalogError]:
    """A rendered file holding a vended account's placeholder (``naming.vended_account``) would
    apply a wrong ARN: every occurrence is an error (a generator bug, at the rendered line).
    A spilled file was looked at by its worker (:func:`holds_placeholder`): it has none."""
    errors: list[CatalogError] = []
    for path, data in files.items():
        if not isinstance(data, bytes) or _PLACEHOLDER not in data:
            continue
        for number, line in enumerate(data.decode("utf-8", "replace").split("\n"), 1):
            for m in naming.VENDED_ACCOUNT.finditer(line):
                errors.append(
                    CatalogError(
                        Location(path, number, m.start() + 1),
                        f"placeholder {m.group(0)} in a rendered file: the account is vended and its id not recorded "
                        "(apply rendered/terraform/org, then run companyos record-accounts); this output must be held until then",
                    )
                )
    return errors


def _serial(
    model: Model, chosen: list[Target], progress: Callable[[int, int], None] | None, finish: Callable[[str, RenderedFile], Finished]
) -> Iterator[Finished]:
    templates = Templates(model.templates)
    for done, target in enumerate(chosen, 1):
        for item in target.render(model, templates):
            yield finish(target.NAME, item)
        if progress is not None:
            progress(done, len(chosen))


def finalize(target: str, item: RenderedFile, *, examine: bool = True) -> Finished:
    """One target's record -> (path, final bytes, manifest entry, its contracts, its
    consumer-limit facts unless not ``examine``); refuses escaping paths. Runs in the render
    workers for a large catalog, so the limits' parsing is spread over them."""
    if not (item.path.startswith("rendered/") or item.path.startswith(".github/workflows/")) or ".." in item.path.split("/"):
        raise CatalogErrors([CatalogError(Location(item.path), "outputs must stay under rendered/ or .github/workflows/")])
    sources = item.sources if item.tenant is not None else shared_sources(item.sources)
    data = emit.finalize(item.text, sources, item.comment)
    entry: dict[str, Any] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "sources": sorted(set(sources)),
        "target": target,
    }
    for key in ("tenant", "environment", "root"):
        value = getattr(item, key)
        if value is not None:
            entry[key] = value
    facts = limits.facts(item.path, data) if examine else None
    noted = limits.record(facts)
    if noted is not None:  # the unit manifest keeps them: a reused file is judged unread
        entry["limits"] = noted
    declared = (item.path, item.provides, item.consumes, item.sources[0] if item.sources else item.path)
    return item.path, data, entry, declared, facts


_TENANT_FILE = re.compile(r"^tenants/[^/]+\.ya?ml$")


def shared_sources(sources: Iterable[str]) -> tuple[str, ...]:
    """A fleet-wide file's sources with every tenant file as ``emit.TENANT_FILES``."""
    return tuple(dict.fromkeys(emit.TENANT_FILES if _TENANT_FILE.match(s) else s for s in sources))


def _finalize_unexamined(target: str, item: RenderedFile) -> Finished:
    """:func:`finalize` for a partial render (some targets only): no limit facts."""
    return finalize(target, item, examine=False)


def contracts_of(decl: contracts.Declared | contracts.SpilledContracts, spool: Spool | None) -> contracts.Declared | None:
    """A finished file's contracts as the check reads them (a worker's spilled ones from the
    spool, when asked), None when it has none."""
    if isinstance(decl, contracts.SpilledContracts):
        assert spool is not None, "only a spooled render's workers spill contracts"
        return contracts.spooled(decl, spool)
    return decl if decl[1] or decl[2] else None


def add_output(
    files: MutableMapping[str, Stored], entries: dict[str, Mapping[str, Any]], path: str, data: Stored, entry: dict[str, Any]
) -> None:
    """A finished file into the render's maps; two targets claiming one path is an error."""
    if path in files:
        raise CatalogErrors(
            [CatalogError(Location(path), f"two outputs claim this path (targets {entries[path]['target']} and {entry['target']})")]
        )
    files[path] = data
    entries[path] = entry
