"""The contract check: every consumed contract has a producer in the same render.

Targets declare what each rendered file provides and consumes (``targets/contracts.py``);
after every target rendered, :func:`check` proves most files right with set operations over
(kind, scope, name, detail) keys and judges the rest one consumer at a time: a missing producer, a detail the two sides disagree on (an IRSA trust naming
another service account, a secret in another account) or a CRD kind two add-ons provide is a
``path:line:col`` error at the catalog line that caused the consumer. :data:`STRICT` says,
per kind, which findings fail the render; the rest are only listed (``explain --contracts``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NamedTuple, overload

import msgspec

from generator.errors import CatalogError, Location, UsageError
from generator.output.spool import Spool, Stored, fetch
from generator.targets.contracts import Contract, Kind

#: kind -> (a missing producer fails the render, a detail mismatch fails the render). The one
#: switch per kind; a finding that does not fail is still listed by ``explain --contracts``.
STRICT: dict[Kind, tuple[bool, bool]] = {
    "secret": (True, True),
    "iam_role": (True, True),
    "namespace": (True, True),
    "service_account": (True, True),
    "dns_name": (True, True),
    "certificate": (True, True),
    "crd_kind": (True, True),
    "prometheus_endpoint": (True, True),
    "terraform_output": (True, True),
    "argocd_kind": (True, True),
    "secret_store": (True, True),
    "prober_endpoint": (True, True),
    "dashboard_sidecar": (True, True),
    "sns_topic": (True, True),
    "flag_source": (True, True),
    "otlp_endpoint": (True, True),
    "api_service": (True, True),
    "ingress_class": (True, True),
    "ingress_group": (True, True),
    "ecs_task": (True, True),
    "argocd_cluster": (True, True),
}

#: Where a producer of each kind comes from, for the error message.
PRODUCERS: dict[Kind, str] = {
    "secret": "an aws_secretsmanager_secret in the tenant's Terraform root",
    "iam_role": "an IRSA role in a Terraform root (tenant root, or the shared root's addons.tf)",
    "namespace": "the platform's namespace Application (or an add-on's CreateNamespace)",
    "service_account": "the chart values of a service or an add-on",
    "dns_name": "a Route 53 record in a Terraform root, or external-dns from an Ingress annotation",
    "certificate": "an ACM certificate in a Terraform root",
    "crd_kind": "exactly one add-on listing it in provides_crds (catalog/addons/)",
    "prometheus_endpoint": "a Prometheus add-on (catalog/addons/)",
    "terraform_output": 'an output "..." block of the Terraform root read through remote state',
    "argocd_kind": "the AppProject's resource whitelist",
    "secret_store": "the namespace file's SecretStore (targets/argocd/namespaces.py), assuming the tenant's secret-reader role",
    "prober_endpoint": "a blackbox exporter add-on (catalog/addons/, chart prometheus-blackbox-exporter)",
    "dashboard_sidecar": "a Grafana add-on whose dashboard sidecar watches all namespaces for that label (catalog/addons/)",
    "sns_topic": "an aws_sns_topic (sns module) in the same Terraform root's alarms.tf",
    "flag_source": "the service's FeatureFlagSource (targets/feature_flags.py, from its flags settings)",
    "otlp_endpoint": "an OpenTelemetry collector add-on with service.enabled (catalog/addons/, chart opentelemetry-collector)",
    "api_service": "an add-on registering that aggregated API (catalog/addons/: metrics.k8s.io from chart metrics-server, apiService.create)",
    "ingress_class": "an add-on creating that IngressClass (catalog/addons/: chart aws-load-balancer-controller, ingressClass + createIngressClassResource)",
    "ingress_group": "the tenant's Applications on that cell's cluster deploying a public service's Ingress of that group (its cell file rendered/argocd/<env>/cells/<cell>/<tenant>.json)",
    "ecs_task": "the restore verifier's task definition, cluster, log group, network parameter and DB subnet group in the shared root's dr.tf",
    "argocd_cluster": (
        "a cluster registered in Argo CD: a cell's registration (rendered/argocd/<env>/clusters/<cell>.yaml, every cell after the first), "
        "the standby's (standby/standby.yaml), or Argo CD's own cluster (the first cell, declared by bootstrap.yaml)"
    ),
}

#: (path, provides, consumes, first source) of one rendered file.
Declared = tuple[str, Sequence[Contract], Sequence[Contract], str]


class RecordedContracts(Sequence[Contract]):
    """One file's contracts as a unit manifest records them, ``[kind, name, scope, detail,
    place]`` rows (``place`` indexes the unit's ``places``), turned into a Contract only when
    asked: the fleet-wide :func:`check` reads the rows themselves (a 10,000-tenant check
    would otherwise build millions of Contracts it never looks at). ``rows`` may be the
    rows' JSON text, decoded on first use: an edit whose contract change is proven by
    :func:`unchanged` never decodes a reused unit's contracts (55 % of its manifest)."""

    __slots__ = ("_origin", "_places", "_rows")

    def __init__(self, rows: Sequence[Sequence[Any]] | msgspec.Raw, places: Sequence[Location], origin: str = "") -> None:
        self._rows = rows
        self._places = places
        self._origin = origin

    @property
    def rows(self) -> Sequence[Sequence[Any]]:
        if not self.decodable():  # a unit plan checks what nothing vouched for before reusing it: not expected
            raise UsageError(f"{self._origin or 'a unit manifest'}: damaged contract rows; run `companyos render --full`")
        return self._rows  # type: ignore[return-value]

    def decodable(self) -> bool:
        """Whether the rows decode (decoding them now, once): asked of a recorded unit nothing vouches for."""
        if isinstance(self._rows, msgspec.Raw):
            try:
                self._rows = _ROWS.decode(self._rows)
            except msgspec.MsgspecError:
                return False
        return True

    def _contract(self, row: Sequence[Any]) -> Contract:
        kind, name, scope, detail, place = row
        where = self._places[place] if isinstance(place, int) and 0 <= place < len(self._places) else None
        return Contract(kind, str(name), str(scope), str(detail), where)

    @overload
    def __getitem__(self, index: int) -> Contract: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Contract]: ...
    def __getitem__(self, index: int | slice) -> Contract | Sequence[Contract]:
        if isinstance(index, slice):
            return [self._contract(row) for row in self.rows[index]]
        return self._contract(self.rows[index])

    def __len__(self) -> int:
        return len(self.rows)


#: A file's contracts as a render worker spills them (:func:`spilled_form`): its places
#: (path, line, col), then the provided and the consumed rows, each place an index into them.
PlacedForm = tuple[list[tuple[str, int, int]], list[tuple[str, str, str, str, int | None]], list[tuple[str, str, str, str, int | None]]]
_SPILL = msgspec.msgpack.Encoder()
_UNSPILL = msgspec.msgpack.Decoder(PlacedForm)


def spilled_form(provides: Sequence[Contract], consumes: Sequence[Contract]) -> bytes:
    """A file's contracts as bytes for the render's spool (``parallel``): a worker sends back
    where they lie instead of the contracts (at 1,000 tenants ~460,000 of them, ~100 MB held
    by the render until its unit manifests were assembled)."""
    return _SPILL.encode(placed_form(provides, consumes))


class SpilledContracts(NamedTuple):
    """A file's contracts as a render worker sends them back: where it put their
    :func:`spilled_form` (the render reads them as :func:`spooled`)."""

    path: str
    stored: Stored
    first: str


class SpooledContracts(Sequence[Contract]):
    """One side (0: provides, 1: consumes) of a file's contracts in the render's spool,
    decoded each time asked and never kept: the fleet's check reads them a unit at a time,
    and so does the unit manifest that records them (:meth:`placed`)."""

    __slots__ = ("_side", "_spool", "_stored")

    def __init__(self, stored: Stored, spool: Spool, side: int) -> None:
        self._stored, self._spool, self._side = stored, spool, side

    def form(self) -> PlacedForm:
        """The file's places and both sides' rows, as :func:`spilled_form` made them."""
        return _UNSPILL.decode(fetch(self._stored, self._spool))

    def placed(self) -> tuple[list[tuple[str, int, int]], list[tuple[str, str, str, str, int | None]]]:
        """The file's places and this side's rows (each place an index into them)."""
        places, provides, consumes = self.form()
        return places, consumes if self._side else provides

    @property
    def rows(self) -> Sequence[Sequence[Any]]:
        return self.placed()[1]

    def _contracts(self) -> list[Contract]:
        places, rows = self.placed()
        where = [Location(*place) for place in places]
        return [Contract(kind, name, scope, detail, None if at is None else where[at]) for kind, name, scope, detail, at in rows]  # type: ignore[arg-type]

    @overload
    def __getitem__(self, index: int) -> Contract: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Contract]: ...
    def __getitem__(self, index: int | slice) -> Contract | Sequence[Contract]:
        return self._contracts()[index]

    def __iter__(self) -> Iterator[Contract]:
        return iter(self._contracts())

    def __len__(self) -> int:
        return len(self.rows)

    def __reduce__(self) -> tuple[type[tuple[Contract, ...]], tuple[tuple[Contract, ...]]]:
        return tuple, (tuple(self._contracts()),)  # pickled as the contracts (the spool does not travel)


def placed_form(provides: Sequence[Contract], consumes: Sequence[Contract]) -> PlacedForm:
    """A file's contracts as places and rows, each place an index into them: read from the
    render's spool, or made from the contracts (how a unit manifest records them)."""
    if isinstance(provides, SpooledContracts):
        return provides.form()  # both sides lie in one spilled record
    index: dict[int, int] = {}  # a position object's place, by its id: most contracts share a few
    places: list[tuple[str, int, int]] = []

    def row(c: Contract) -> tuple[str, str, str, str, int | None]:
        if c.at is None:
            return (c.kind, c.name, c.scope, c.detail, None)
        at = index.get(id(c.at))
        if at is None:
            at = index[id(c.at)] = len(places)
            places.append((c.at.path, c.at.line, c.at.col))
        return (c.kind, c.name, c.scope, c.detail, at)

    return places, [row(c) for c in provides], [row(c) for c in consumes]


def spooled(spilled: SpilledContracts, spool: Spool) -> Declared:
    """A worker's spilled record of a file's contracts (``parallel``) as a Declared."""
    path, stored, first = spilled
    return (path, SpooledContracts(stored, spool, 0), SpooledContracts(stored, spool, 1), first)


#: Recorded rows: kind, name, scope, detail, index into the unit's places (or null).
_ROWS = msgspec.json.Decoder(list[tuple[str, str, str, str, int | None]])


def _rows(contracts: Sequence[Contract]) -> Sequence[Sequence[Any]]:
    """The contracts as tuples or recorded rows: the first four positions (kind, name, scope,
    detail) are the same in both."""
    return contracts.rows if isinstance(contracts, (RecordedContracts, SpooledContracts)) else contracts


@dataclass(frozen=True)
class Link:
    """One consumed contract, its producers and what is wrong (``ok``, ``missing``,
    ``mismatch`` or ``ambiguous``); ``strict`` when that finding fails the render."""

    contract: Contract
    consumer: str
    producers: tuple[str, ...]
    status: str
    message: str
    location: Location
    strict: bool


def links(declared: Iterable[Declared], *, broken_only: bool = False) -> list[Link]:
    """Every consumed contract with its producers (or only the broken ones), in rendered-path
    order. One pass to index the producers, one to look each consumer up: O(contracts)."""
    items = list(declared)
    producers: dict[tuple[str, str, str], list[tuple[Contract, str]]] = {}
    for path, provides, _, _ in items:
        for c in provides:
            key = (c.kind, c.scope, c.name)  # Contract.key(), inlined: this loop runs per contract of the fleet
            found = producers.get(key)
            if found is None:
                producers[key] = [(c, path)]
            else:
                found.append((c, path))
    out: list[Link] = []
    for path, _, consumes, source in items:
        for c in dict.fromkeys(consumes) if len(consumes) > 1 else consumes:
            kind = c.kind
            found = producers.get((kind, c.scope, c.name))
            if found is None and kind == "argocd_kind":
                found = producers.get((kind, c.scope, c.name.split(":", 1)[0] + ":*/*"))
            if broken_only and found and kind != "crd_kind" and (not c.detail or any(p.detail == c.detail for p, _ in found)):
                continue
            out.append(_judge(c, path, found or [], c.at or Location(source)))
    return out


def _judge(c: Contract, consumer: str, found: list[tuple[Contract, str]], where: Location) -> Link:
    paths = tuple(sorted({p for _, p in found}))
    missing_strict, mismatch_strict = STRICT[c.kind]
    what = f"{c.kind} '{c.name}'" + (f" in {c.scope}" if c.scope else "")
    if not found:
        message = f"{consumer} consumes {what}, but no rendered file provides it (producer: {PRODUCERS[c.kind]})"
        return Link(c, consumer, paths, "missing", message, where, missing_strict)
    if c.kind == "crd_kind":
        owners = sorted({p.detail for p, _ in found})
        if len(owners) > 1:
            message = f"{consumer} uses {what}, provided by {len(owners)} add-ons ({', '.join(owners)}); exactly one must provide it"
            return Link(c, consumer, paths, "ambiguous", message, where, mismatch_strict)
    if c.detail and all(p.detail != c.detail for p, _ in found):
        given = ", ".join(sorted({f"{p.detail} ({path})" for p, path in found}))
        message = f"{consumer} consumes {what} {_needs(c)}, but the producer gives {given}"
        return Link(c, consumer, paths, "mismatch", message, where, mismatch_strict)
    return Link(c, consumer, paths, "ok", "", where, False)


def _needs(c: Contract) -> str:
    if c.kind == "iam_role" and c.detail.startswith(("trusts ", "assumable by ")):
        return f"that {c.detail}"
    if c.kind == "iam_role":
        return f"for service account {c.detail}: its trust must name exactly that namespace:serviceaccount"
    if c.kind == "secret":
        return f"in {c.detail} (the role its namespace's SecretStore assumes)"
    if c.kind == "secret_store":
        return f"assuming {c.detail}"
    if c.kind == "certificate":
        return f"in region {c.detail}"
    return f"with {c.detail}"


#: A contract's (kind, scope, name), and with its detail: positions in ``Contract``'s tuple.
_KEY = itemgetter(0, 2, 1)
_WANT = itemgetter(0, 2, 1, 3)


def check(declared: Iterable[Declared]) -> list[CatalogError]:
    """The errors of :func:`links` that :data:`STRICT` makes fatal, one per broken contract.

    Most files are proven fine by set operations over their contracts' keys (C loops over
    tuples, no Link per contract): only files with a consumer those cannot vouch for are
    judged one contract at a time by :func:`links` (tested equal on planted faults)."""
    items = list(declared)
    suspects = _suspects(items)
    if not suspects:
        return []
    producing = [(path, provides, (), source) for path, provides, _, source in items if provides]
    broken = links([*producing, *((path, (), consumes, source) for path, _, consumes, source in suspects)], broken_only=True)
    return sorted({CatalogError(link.location, link.message) for link in broken if link.strict and link.status != "ok"})


def check_by_unit(shared: Sequence[Declared], units: Callable[[], Iterable[Iterable[Declared]]]) -> list[CatalogError]:
    """:func:`check` of ``shared`` and every unit ``units()`` yields, holding one unit's
    contracts at a time (a unit's are read from its manifest and let go): the same errors.

    A consumer answered by its own unit's producers or by ``shared``'s (the global unit and
    the units rendered this run) is answered in the fleet, which has those producers too;
    that settles every consumer of a tenant unit in practice. ``shared``'s other consumers
    (the global unit's failover plan assumes regulated tenants' roles) are looked up among
    each unit's producers in the same pass; a unit's, if any, in a second pass. Only if
    something is still unanswered, or a used CRD kind has two owners, is the whole fleet
    gathered and judged by :func:`check` (the errors then name every broken contract).
    ``units`` is called once per pass."""
    offered = set(_wants(shared, 1))
    keys = {(kind, scope, name) for kind, scope, name, _ in offered}
    crd_offered = {want for want in offered if want[0] == "crd_kind"}
    consumed = set(_wants(shared, 2))
    crd_used = {(kind, scope, name) for kind, scope, name, _ in consumed if kind == "crd_kind"}
    # what shared's producers do not answer: a unit's may
    left = {want for want in consumed - offered if not _answered(want, keys)}
    wanted = _keys_asked(left)
    found: set[tuple[str, str, str, str]] = set()
    for unit in units():
        items = list(unit)
        own = set(_wants(items, 1))
        own_keys = {(kind, scope, name) for kind, scope, name, _ in own}
        crd_offered.update(want for want in own if want[0] == "crd_kind")
        found.update(want for want in own if want[:3] in wanted)
        consumed = set(_wants(items, 2))
        crd_used.update((kind, scope, name) for kind, scope, name, _ in consumed if kind == "crd_kind")
        left.update(want for want in consumed - own - offered if not (_answered(want, own_keys) or _answered(want, keys)))
    left = _unanswered(left, found)
    if left and not _keys_asked(left) <= wanted:  # a unit's consumer no producer seen so far answers
        wanted = _keys_asked(left)
        found = {want for want in offered if want[:3] in wanted}
        for unit in units():
            found.update(want for want in _wants(list(unit), 1) if want[:3] in wanted)
        left = _unanswered(left, found)
    owners: dict[tuple[str, str, str], int] = {}
    for kind, scope, name, _ in crd_offered:
        owners[(kind, scope, name)] = owners.get((kind, scope, name), 0) + 1
    if not left and all(owners.get(key, 0) <= 1 for key in crd_used):
        return []
    everything = [*shared, *(item for unit in units() for item in unit)]
    return check(sorted(everything, key=itemgetter(0)))


def _keys_asked(wants: Iterable[tuple[str, str, str, str]]) -> set[tuple[str, str, str]]:
    """The keys whose producers could answer ``wants``: their own, and the Argo CD project
    wildcards that may admit a kind."""
    out: set[tuple[str, str, str]] = set()
    for kind, scope, name, _ in wants:
        out.add((kind, scope, name))
        if kind == "argocd_kind":
            out.add((kind, scope, name.split(":", 1)[0] + ":*/*"))
    return out


def _unanswered(wants: set[tuple[str, str, str, str]], found: set[tuple[str, str, str, str]]) -> set[tuple[str, str, str, str]]:
    """``wants`` that ``found`` (every producer of their keys asked) does not answer."""
    found_keys = {(kind, scope, name) for kind, scope, name, _ in found}
    return {want for want in wants if want not in found and not _answered(want, found_keys)}


def _suspects(items: list[Declared]) -> list[Declared]:
    """Files with a consumer that no producer answers exactly by (key, detail), or by key for
    a consumer without detail, or that consumes a CRD kind more than one add-on provides."""
    offered: set[tuple[str, str, str, str]] = set()
    for _, provides, _, _ in items:
        offered.update(map(_WANT, _rows(provides)))
    keys = {(kind, scope, name) for kind, scope, name, _ in offered}
    owners: dict[tuple[str, str, str], int] = {}
    for kind, scope, name, _ in offered:
        if kind == "crd_kind":
            owners[(kind, scope, name)] = owners.get((kind, scope, name), 0) + 1
    ambiguous = {key for key, count in owners.items() if count > 1}
    out: list[Declared] = []
    for item in items:
        consumes = _rows(item[2])
        if not consumes:
            continue
        residue = set(map(_WANT, consumes)) - offered
        if any(not _answered(want, keys) for want in residue) or (ambiguous and not ambiguous.isdisjoint(map(_KEY, consumes))):
            out.append(item)
    return out


def _answered(want: tuple[str, str, str, str], keys: set[tuple[str, str, str]]) -> bool:
    """A consumer without detail whose key is produced (with some detail), or an Argo CD kind
    the project's wildcard admits: what :func:`links` accepts beyond an exact match."""
    kind, scope, name, detail = want
    if (kind, scope, name) in keys:
        return not detail
    return kind == "argocd_kind" and not detail and (kind, scope, name.split(":", 1)[0] + ":*/*") in keys


def unchanged(new: Sequence[Declared], old: Sequence[Declared], reused: Iterable[Declared]) -> bool:
    """Whether the fleet provably passes :func:`check` without looking at the reused files'
    consumers: ``old`` and ``reused`` together are a fleet that passed it (the units last
    verified together), ``new`` replaces ``old`` (the units rendered again; a removed
    tenant's old unit has no new one). False means "not proven", never "broken": the caller
    then runs :func:`check` over everything, which finds the errors.

    Proof (docs/incremental.md): every way a consumer is answered is one producer doing it,
    so answers only grow with producers. If ``new`` withdraws nothing ``old`` provided and
    adds no CRD owner, every reused consumer keeps the producers it had and no CRD kind gains
    a second owner. A consumer in ``new`` is answered by ``new``'s producers, or was a consumer
    in ``old`` (answered then, and not by ``old``'s producers, which ``new`` still has: so by a
    reused file's, which is unchanged). A CRD kind it uses has the owners it had in the old
    fleet, where some consumer used it (or the reused files' owners are counted)."""
    if not all(missing and mismatch for missing, mismatch in STRICT.values()):
        return False  # a finding the old fleet was allowed to keep could turn fatal
    offered = set(_wants(new, 1))
    before = set(_wants(old, 1))
    if not before <= offered or any(want[0] == "crd_kind" for want in offered - before):
        return False
    keys = {(kind, scope, name) for kind, scope, name, _ in offered}
    wanted_before = set(_wants(old, 2))
    kinds_used: set[tuple[str, str, str]] = set()
    for want in set(_wants(new, 2)):
        if want[0] == "crd_kind":
            kinds_used.add((want[0], want[1], want[2]))
        if want not in offered and not _answered(want, keys) and want not in wanted_before:
            return False
    unproven = kinds_used - {(kind, scope, name) for kind, scope, name, _ in wanted_before if kind == "crd_kind"}
    if unproven:  # CRD kinds no old consumer used: count every owner the fleet has
        owners: dict[tuple[str, str, str], set[str]] = {}
        for kind, scope, name, detail in (*offered, *(w for w in _wants(list(reused), 1) if w[0] == "crd_kind")):
            if kind == "crd_kind" and (kind, scope, name) in unproven:
                owners.setdefault((kind, scope, name), set()).add(detail)
        return all(len(found) <= 1 for found in owners.values())
    return True


def _wants(items: Sequence[Declared], side: int) -> Iterator[tuple[str, str, str, str]]:
    """(kind, scope, name, detail) of every contract the files provide (``side`` 1) or consume (2)."""
    for item in items:
        yield from map(_WANT, _rows(item[2] if side == 2 else item[1]))
