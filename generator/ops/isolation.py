"""``companyos isolation``: prove from the rendered tree that no tenant reaches another.

Reads what was rendered (not the model), so a hand edit or a template change that opens a
path is caught as well as a catalog one. Per environment it collects each tenant's objects
(namespace file, AppProject, Terraform root) and each data store's owners (dedicated VPC, pool
VPC and bucket), then follows every edge a tenant could use: NetworkPolicy peers and CIDRs,
security group rules of the data stores, pod security groups, IRSA and secret-reader trusts,
SecretStore roles, AppProject destinations and roles, RoleBindings, S3 and KMS grants, and
the pools' per-tenant bootstrap files (their namespace, pool and the names their SQL uses). An
edge ending at another tenant (or anyone) is a finding with the rendered file:line of each
hop. Threat model and what is not covered: docs/isolation.md.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import functools
import gc
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from generator import pipeline
from generator.model import naming
from generator.ops.parse_memo import Blocks, ParseMemo
from generator.ops.pod_groups import POOL_ADMIN_OUTPUT
from generator.output import forked

ANYONE = "*"
NetworkAddress = ipaddress.IPv4Network | ipaddress.IPv6Network
T = TypeVar("T")


@dataclass(frozen=True)
class Hop:
    """One rendered place a path goes through."""

    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.what} ({self.path}:{self.line})"


@dataclass(frozen=True)
class Finding:
    """A path from ``source``'s principals or pods to ``target``'s (``*``: any tenant)."""

    env: str
    layer: str
    source: str
    target: str
    hops: tuple[Hop, ...]

    def __str__(self) -> str:
        return f"{self.env}: {self.layer}: {self.source} -> {self.target}: " + " -> ".join(str(h) for h in self.hops)

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.env,
            "layer": self.layer,
            "from": self.source,
            "to": self.target,
            "path": [{"file": h.path, "line": h.line, "what": h.what} for h in self.hops],
        }


# --- reading the rendered files ------------------------------------------------------------


@dataclass
class Text:
    """A rendered file's text, for line numbers of what the parsers found."""

    path: str
    text: str

    @functools.cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def line(self, needle: str, after: int = 1) -> int:
        """The first line at or after ``after`` containing ``needle`` (``after`` if none)."""
        lines = self.lines
        for number in range(max(after, 1), len(lines) + 1):
            if needle in lines[number - 1]:
                return number
        return after


def _blocks(doc: dict[str, Any], kind: str, rtype: str | None = None) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every ``kind`` block (resource, data: two labels; module: one)."""
    for block in doc.get(kind, []):
        for first, body in block.items():
            if kind == "module":
                yield "", first, body
                continue
            if rtype is not None and first != rtype:
                continue
            for name, inner in body.items():
                yield first, name, inner


def _statements(body: dict[str, Any]) -> list[dict[str, Any]]:
    found = body.get("statement", [])
    return found if isinstance(found, list) else [found]


def _conditions(statement: dict[str, Any]) -> list[dict[str, Any]]:
    found = statement.get("condition", [])
    return found if isinstance(found, list) else [found]


#: The blocks of a ``main.tf`` the analyzer reads (``_blocks``' callers): what a parse keeps.
READ_BLOCKS: Blocks = {
    "data": frozenset({"terraform_remote_state", "aws_iam_policy_document"}),
    "module": None,
    "resource": frozenset({"aws_security_group_rule", "aws_vpc_security_group_ingress_rule"}),
}


# --- the world of one environment ----------------------------------------------------------


class _Derived(Generic[T]):
    """A value made from one of a world's collections, made again when the collection is
    another object or has another size: a world's collections only grow while it is read,
    and a test replaces them whole. A scan of every tenant or network per lookup instead was
    quadratic, minutes at 10,000 tenants."""

    def __init__(self, source: Callable[[World], Sized], make: Callable[[World], T]) -> None:
        self._source, self._make = source, make
        self._key: tuple[int, int] = (0, -1)
        self._value: T | None = None

    def of(self, world: World) -> T:
        collection = self._source(world)
        key = (id(collection), len(collection))
        if self._value is None or key != self._key:
            self._value, self._key = self._make(world), key
        return self._value


class _DataNetworks:
    """A world's data networks by first address per IP version, and the answer of
    :meth:`World.reached` per distinct ipBlock (every tenant's public egress is one block)."""

    def __init__(self, data_cidrs: dict[NetworkAddress, set[str]]) -> None:
        self._owners = data_cidrs
        self._order = {data: n for n, data in enumerate(data_cidrs)}
        self._starts: dict[int, tuple[list[int], list[NetworkAddress]]] = {4: ([], []), 6: ([], [])}
        for data in sorted(data_cidrs, key=lambda d: (d.version, int(d.network_address), d.prefixlen)):
            starts, networks = self._starts[data.version]
            starts.append(int(data.network_address))
            networks.append(data)
        self._reached: dict[tuple[NetworkAddress, tuple[NetworkAddress, ...]], list[tuple[NetworkAddress, set[str]]]] = {}

    def reached(self, cidr: NetworkAddress, excepts: tuple[NetworkAddress, ...]) -> list[tuple[NetworkAddress, set[str]]]:
        known = self._reached.get((cidr, excepts))
        if known is None:
            found = sorted(self._overlapping(cidr), key=self._order.__getitem__)
            known = [
                (data, self._owners[data])
                for data in found
                if not any(data.subnet_of(e) for e in excepts if e.version == data.version)  # type: ignore[arg-type]
            ]
            self._reached[(cidr, excepts)] = known
        return known

    def _overlapping(self, cidr: NetworkAddress) -> Iterator[NetworkAddress]:
        """Two CIDR blocks overlap only when one holds the other: ``cidr``'s supernets (one
        lookup per shorter prefix) and the networks that start inside it (a bisection)."""
        for prefix in range(cidr.prefixlen + 1):
            wider = cidr.supernet(new_prefix=prefix)
            if wider in self._owners:
                yield wider
        starts, networks = self._starts[cidr.version]
        first, last = int(cidr.network_address), int(cidr.broadcast_address)
        for position in range(bisect.bisect_left(starts, first), bisect.bisect_right(starts, last)):
            if networks[position].prefixlen > cidr.prefixlen:  # the equal one is a supernet above
                yield networks[position]


def _owner_maps(world: World) -> tuple[dict[str, str], dict[str, str]]:
    """Namespace -> tenant and group -> tenant."""
    tenants = sorted(world.tenants)
    return {naming.namespace(t): t for t in tenants}, {naming.tenant_group_of(world.organization, t): t for t in tenants}


def _sql_name_maps(world: World) -> tuple[dict[str, str], dict[str, str]]:
    """Each tenant's SQL names (its name, its identifier, ``tenant_<identifier>``; the longest
    tenant where two share one) and identifier -> tenant."""
    exact: dict[str, str] = {}
    idents: dict[str, str] = {}
    for tenant in sorted(world.tenants, key=lambda t: (len(t), t)):  # longer ones win
        ident = tenant.replace("-", "_")
        for name in (tenant, ident, f"tenant_{ident}"):
            exact[name] = tenant
        idents[ident] = tenant
    return exact, idents


@dataclass
class World:
    env: str
    rendered: Path
    organization: str
    tenants: set[str] = field(default_factory=set)
    #: data CIDR -> the tenants whose data it holds (a dedicated VPC: one; a pool's: its tenants)
    data_cidrs: dict[NetworkAddress, set[str]] = field(default_factory=dict)
    #: pool root name -> its pooled tenants (tenant roots reading its state)
    pools: dict[str, set[str]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    #: Parses of the rendered files, shared by the world's copies.
    memo: ParseMemo = field(default_factory=lambda: ParseMemo(None, READ_BLOCKS), repr=False)
    #: Lookups made from :attr:`tenants` and :attr:`data_cidrs` (shared by the world's copies).
    _owners: _Derived[tuple[dict[str, str], dict[str, str]]] = field(
        default_factory=lambda: _Derived(lambda w: w.tenants, _owner_maps), repr=False, compare=False
    )
    _sql_names: _Derived[tuple[dict[str, str], dict[str, str]]] = field(
        default_factory=lambda: _Derived(lambda w: w.tenants, _sql_name_maps), repr=False, compare=False
    )
    _networks: _Derived[_DataNetworks] = field(
        default_factory=lambda: _Derived(lambda w: w.data_cidrs, lambda w: _DataNetworks(w.data_cidrs)), repr=False, compare=False
    )

    def rel(self, path: Path) -> str:
        return path.relative_to(self.rendered.parent).as_posix()

    def owner_of_namespace(self, namespace: str) -> str | None:
        return self._owners.of(self)[0].get(namespace)

    def owner_of_group(self, group: str) -> str | None:
        return self._owners.of(self)[1].get(group)

    def add(self, layer: str, source: str, target: str, *hops: Hop) -> None:
        self.findings.append(Finding(self.env, layer, source, target, hops))

    def sql_names(self) -> tuple[dict[str, str], dict[str, str]]:
        """The names a pool bootstrap's SQL may use for each tenant: its name, its identifier
        and ``tenant_<identifier>`` (the longest tenant where two share one), and identifier ->
        tenant for ``<identifier>_...`` (``_sql_owner``)."""
        return self._sql_names.of(self)

    def reached(self, cidr: NetworkAddress, excepts: tuple[NetworkAddress, ...]) -> list[tuple[NetworkAddress, set[str]]]:
        """The data networks an ipBlock reaches (overlapping ``cidr``, inside none of ``excepts``),
        in :attr:`data_cidrs`' order."""
        return self._networks.of(self).reached(cidr, excepts)


def environments(root: Path) -> list[str]:
    """The environments of ``root/rendered`` (those with a namespaces folder), sorted."""
    argocd = root / "rendered" / "argocd"
    return sorted(p.name for p in argocd.iterdir() if (p / "namespaces").is_dir()) if argocd.is_dir() else []


def analyze(root: Path, organization: str, *, cache: Path | None = None, only: Sequence[str] = ()) -> list[Finding]:
    """Every cross-tenant path in ``root/rendered``, per environment (``only``: these), in a
    stable order. ``cache``: the project whose ``.companyos-cache`` keeps the parses between
    runs (``ops.parse_memo``; None: kept for this run only); the files it has not parsed
    before are parsed first, on every core, and afterwards the memo holds what this run read."""
    rendered = root / "rendered"
    envs = [env for env in environments(root) if not only or env in only]
    memo = ParseMemo(cache, READ_BLOCKS)
    findings: list[Finding] = []
    with _collector_on():
        memo.warm(_parsed_files(rendered, envs), forked.default_jobs())
        for env in envs:
            findings += _analyze_env(rendered, env, organization, memo)
    memo.prune()  # the memo holds what this run read: in CI, one environment's job keeps its own
    return findings


def _parsed_files(rendered: Path, envs: Sequence[str]) -> list[Path]:
    """The files the analysis parses, in the order it reads them (the parse memo's misses are
    parsed ahead of it, on every core): roots' ``main.tf``, namespace, project and pool files."""
    out: list[Path] = []
    for env in envs:
        tf, argocd = rendered / "terraform" / env, rendered / "argocd" / env
        out += (
            [root / "main.tf" for root in sorted(tf.iterdir()) if root.name != "shared" and (root / "main.tf").is_file()]
            if tf.is_dir()
            else []
        )
        out += sorted((argocd / "namespaces").glob("*.yaml")) + sorted((argocd / "projects").glob("*.yaml"))
        out += sorted((argocd / "pools").glob("*/*.yaml"))
    return out


@contextlib.contextmanager
def _collector_on() -> Iterator[None]:
    """The cyclic garbage collector on while parsing: python-hcl2's parse leaves reference
    cycles (~1.5 MB a root), and the console script runs with the collector off
    (``cli.main.entry``): at 1,000 tenants x 3 the analyzer held 6.8 GB of them. It runs
    rarely (``pipeline.fewer_collections``): at the default thresholds a parse took ~20%
    longer, at these ~7%."""
    was_on = gc.isenabled()
    gc.enable()
    try:
        with pipeline.fewer_collections():
            yield
    finally:
        if not was_on:
            gc.disable()


def _analyze_env(rendered: Path, env: str, organization: str, memo: ParseMemo) -> list[Finding]:
    """One environment's findings (see :func:`analyze`)."""
    world = World(env, rendered, organization, memo=memo)
    roots = _collect(world)
    _namespaces(world)
    _projects(world)
    _pool_bootstraps(world)
    _terraform(world, roots)
    return world.findings


@dataclass
class _Roots:
    """The environment's Terraform roots, each ``main.tf`` parsed once (python-hcl2 takes ~95 ms
    for a tenant's; parsing each twice, and holding every parse between the two passes, was
    ~95 minutes and >10 GB at 10,000 tenants x 3): a tenant root's Terraform findings, made
    as it is parsed (they need only its owner and the tenants), and the few pool roots'
    parses, judged once every tenant root has said which pool it reads."""

    #: Root name -> its findings, for roots with one owner (``tenant-*``).
    owned: dict[str, list[Finding]] = field(default_factory=dict)
    #: Pool root name -> its parse.
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)


def _collect(w: World) -> _Roots:
    """Tenants, pools and the data networks each tenant's data lives in (see :class:`_Roots`)."""
    ns_dir = w.rendered / "argocd" / w.env / "namespaces"
    w.tenants = {p.stem for p in ns_dir.glob("*.yaml")}
    w.owner_of_namespace("")  # the owner maps made once, here: each root's copy of the world shares them
    tf = w.rendered / "terraform" / w.env
    out = _Roots()
    networks: list[tuple[str, NetworkAddress]] = []  # in root order, their owners known once every pool is
    for root in sorted(tf.iterdir()) if tf.is_dir() else []:
        main, name = root / "main.tf", root.name
        if not main.is_file() or name == "shared":
            continue  # shared: where every tenant's pods run, not a data network, and no tenant's root
        doc = w.memo.hcl(main)
        for _, block, body in _blocks(doc, "data", "terraform_remote_state"):
            key = str(body.get("config", {}).get("key", ""))
            if name.startswith("tenant-") and block == "pool" and "/pool-" in key:
                w.pools.setdefault(key.split("/")[1], set()).add(name.removeprefix("tenant-"))
        for _, block, body in _blocks(doc, "module"):
            if block == "vpc" and isinstance(body.get("cidr"), str):
                networks.append((name, ipaddress.ip_network(body["cidr"])))
        if name.startswith("pool-"):
            out.pools[name] = doc
        else:
            owned = dataclasses.replace(w, findings=[])  # the same world, its own findings
            _judge_root(owned, root, doc)
            out.owned[name] = owned.findings
    for name, network in networks:
        w.data_cidrs[network] = set(w.pools.get(name, set()) if name.startswith("pool-") else {name.removeprefix("tenant-")})
    return out


# --- Kubernetes: namespaces, NetworkPolicies, SecurityGroupPolicies, RBAC, SecretStores -----


def _namespaces(w: World) -> None:
    ns_dir = w.rendered / "argocd" / w.env / "namespaces"
    namespace_owner: dict[str, tuple[str, Hop]] = {}
    group_ids: dict[str, tuple[str, Hop]] = {}
    for path in sorted(ns_dir.glob("*.yaml")):
        tenant, rel = path.stem, w.rel(path)
        text = Text(rel, path.read_text(encoding="utf-8"))
        own = naming.namespace(tenant)
        for start, doc in w.memo.yaml_docs(path):
            kind, meta = doc.get("kind"), doc.get("metadata", {})
            name = meta.get("name", "")
            here = Hop(rel, text.line(f"name: {name}", start), f"{kind} {name}")
            ns = name if kind == "Namespace" else meta.get("namespace")
            if ns is not None:
                other = w.owner_of_namespace(ns)
                if ns != own:
                    w.add("identity", tenant, other or ANYONE, Hop(here.path, here.line, f"{kind} {name} in namespace {ns}"))
                if kind == "Namespace":
                    if ns in namespace_owner and namespace_owner[ns][0] != tenant:
                        w.add("identity", tenant, namespace_owner[ns][0], here, namespace_owner[ns][1])
                    namespace_owner.setdefault(ns, (tenant, here))
            if kind == "NetworkPolicy":
                _network_policy(w, tenant, doc, text, start)
            elif kind == "SecurityGroupPolicy":
                for gid in doc.get("spec", {}).get("securityGroups", {}).get("groupIds", []):
                    hop = Hop(rel, text.line(gid, start), f"pod security group {gid}")
                    if gid in group_ids and group_ids[gid][0] != tenant:
                        w.add("network", tenant, group_ids[gid][0], hop, group_ids[gid][1])
                    group_ids.setdefault(gid, (tenant, hop))
            elif kind == "RoleBinding" or kind == "ClusterRoleBinding":
                for subject in doc.get("subjects", []):
                    target = _subject_owner(w, tenant, subject)
                    if target is not None:
                        hop = Hop(
                            rel,
                            text.line(str(subject.get("name")), start),
                            f"{kind} {name} grants {subject.get('kind')} {subject.get('name')}",
                        )
                        w.add("identity", target, tenant, hop)
            elif kind == "SecretStore":
                role = str(doc.get("spec", {}).get("provider", {}).get("aws", {}).get("role", ""))
                if not role.endswith(f"-{tenant}-secret-reader"):
                    w.add(
                        "identity", tenant, _role_owner(w, role), Hop(rel, text.line("role:", start), f"SecretStore {name} assumes {role}")
                    )


def _subject_owner(w: World, tenant: str, subject: dict[str, Any]) -> str | None:
    """The tenant (or ANYONE) a RoleBinding subject lets into ``tenant``'s namespace, when
    that is not ``tenant``'s own group or one of its own service accounts."""
    kind, name = subject.get("kind"), str(subject.get("name", ""))
    if kind == "Group":
        if name == naming.tenant_group_of(w.organization, tenant):
            return None
        return w.owner_of_group(name) or ANYONE
    if kind == "ServiceAccount":
        ns = subject.get("namespace")
        return None if ns == naming.namespace(tenant) else (w.owner_of_namespace(str(ns)) or ANYONE)
    return ANYONE


def _role_owner(w: World, role: str) -> str:
    return next((t for t in w.tenants if role.endswith(f"-{t}-secret-reader")), ANYONE)


def _network_policy(w: World, tenant: str, doc: dict[str, Any], text: Text, start: int) -> None:
    name = doc["metadata"]["name"]
    spec = doc.get("spec", {})
    for direction, peers_key in (("egress", "to"), ("ingress", "from")):
        for rule in spec.get(direction) or []:
            line = text.line(f"- {peers_key}:" if peers_key in rule else "ports:", start)
            if peers_key not in rule or not rule[peers_key]:  # no peers: every address, every pod
                what = f"NetworkPolicy {name}: {direction} rule without '{peers_key}:' (every address)"
                w.add("network", tenant, ANYONE, Hop(text.path, line, what))
                continue
            for peer in rule[peers_key]:
                for target, what in _peer_targets(w, tenant, peer):
                    w.add("network", tenant, target, Hop(text.path, line, f"NetworkPolicy {name}: {direction} {what}"))


def _peer_targets(w: World, tenant: str, peer: dict[str, Any]) -> Iterator[tuple[str, str]]:
    own = naming.namespace(tenant)
    if "namespaceSelector" in peer:
        labels = (peer["namespaceSelector"] or {}).get("matchLabels", {})
        expressions = (peer["namespaceSelector"] or {}).get("matchExpressions", [])
        selected = labels.get("kubernetes.io/metadata.name")
        by_tenant = labels.get("companyos.io/tenant")
        if not labels and not expressions:
            yield ANYONE, "to every namespace"
        elif selected is not None and selected != own and w.owner_of_namespace(selected):
            yield str(w.owner_of_namespace(selected)), f"namespace {selected}"
        elif by_tenant is not None and by_tenant != tenant:
            yield str(by_tenant), f"namespaces of tenant {by_tenant}"
        elif expressions:
            yield ANYONE, "namespaces chosen by expression"
    block = peer.get("ipBlock")
    if block is not None:
        cidr = ipaddress.ip_network(block["cidr"], strict=False)
        excepts = tuple(ipaddress.ip_network(e, strict=False) for e in block.get("except", []))
        for data, owners in w.reached(cidr, excepts):
            if tenant in owners:
                continue
            for owner in sorted(owners) or [ANYONE]:
                yield owner, f"{cidr} reaches data network {data}"


# --- Argo CD: AppProjects -------------------------------------------------------------------


def _projects(w: World) -> None:
    folder = w.rendered / "argocd" / w.env / "projects"
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        tenant, rel = path.stem, w.rel(path)
        text = Text(rel, path.read_text(encoding="utf-8"))
        own_ns, own_project = naming.namespace(tenant), naming.argocd_project(tenant, w.env)
        for start, doc in w.memo.yaml_docs(path):
            if doc.get("kind") != "AppProject":
                continue
            spec = doc.get("spec", {})
            for dest in spec.get("destinations", []):
                ns = str(dest.get("namespace", ""))
                if ns != own_ns:
                    hop = Hop(rel, text.line(f"namespace: {ns}", start), f"AppProject {own_project} deploys to namespace {ns}")
                    w.add("identity", tenant, w.owner_of_namespace(ns) or ANYONE, hop)
            if spec.get("clusterResourceWhitelist"):
                w.add(
                    "identity",
                    tenant,
                    ANYONE,
                    Hop(rel, text.line("clusterResourceWhitelist", start), "AppProject may create cluster-scoped objects"),
                )
            for role in spec.get("roles", []):
                for group in role.get("groups", []):
                    if group != naming.tenant_group_of(w.organization, tenant):
                        hop = Hop(
                            rel, text.line(f"- {group}", start), f"AppProject {own_project} role {role.get('name')} admits group {group}"
                        )
                        w.add("identity", w.owner_of_group(group) or ANYONE, tenant, hop)
                for policy in role.get("policies", []):
                    parts = [p.strip() for p in str(policy).split(",")]
                    obj = parts[4] if len(parts) > 4 else ""
                    if not obj.startswith(f"{own_project}/"):
                        hop = Hop(rel, text.line(obj, start), f"AppProject {own_project} role policy on {obj}")
                        w.add("identity", tenant, ANYONE, hop)


# --- pools: the platform's per-tenant bootstrap of the pool databases ------------------------

#: A quoted SQL identifier or string literal of a bootstrap file ("name" or 'name').
_SQL_NAME = re.compile(r"\"([A-Za-z0-9_]+)\"|'([A-Za-z0-9_]+)'")


def _sql_owner(w: World, token: str, own: str) -> str | None:
    """The tenant whose schema, roles or policy ``token`` names (``own`` first, so a longer
    name like ``acme_x`` is not read as tenant ``acme``'s; then the longest), else None. The
    others are looked up by the whole token and by each prefix ending before a ``_``: a scan of
    every tenant per token was quadratic (hours at 10,000 tenants)."""
    if _names_tenant(token, own):
        return own
    exact, idents = w.sql_names()
    found = [exact[token]] if token in exact else []
    found += [idents[token[:end]] for end, char in enumerate(token) if char == "_" and token[:end] in idents]
    return max(found, key=len) if found else None


def _names_tenant(token: str, tenant: str) -> bool:
    ident = tenant.replace("-", "_")
    return token in (tenant, ident, f"tenant_{ident}") or token.startswith(f"{ident}_")


def _pool_bootstraps(w: World) -> None:
    """``pools/<tier>/<tenant>.yaml`` (targets/pool_bootstrap.py): a platform Job in the pools
    namespace, never in a tenant's; for a tenant of that pool; whose SQL names only that
    tenant's schema, roles and policy."""
    folder = w.rendered / "argocd" / w.env / "pools"
    pools_ns = naming.pools_namespace_of(w.organization)
    for path in sorted(folder.glob("*/*.yaml")) if folder.is_dir() else []:
        tier, tenant, rel = path.parent.name, path.stem, w.rel(path)
        text = Text(rel, path.read_text(encoding="utf-8"))
        if path.name == POOL_ADMIN_FILE:
            _pool_admin(w, path, text, tier)
            continue
        if tenant not in w.pools.get(naming.pool_root(tier), set()):
            hop = Hop(rel, 1, f"bootstrap of {tenant} in pool {naming.pool_root(tier)}, which it does not belong to")
            for victim in sorted(w.pools.get(naming.pool_root(tier), set())) or [ANYONE]:
                w.add("data", tenant, victim, hop)
        for start, doc in w.memo.yaml_docs(path):
            meta = doc.get("metadata", {})
            ns = str(meta.get("namespace", ""))
            if ns != pools_ns:
                what = f"{doc.get('kind')} {meta.get('name')} of the pool bootstrap in namespace {ns}"
                hop = Hop(rel, text.line(f"namespace: {ns}", start), what)
                w.add("identity", ANYONE, w.owner_of_namespace(ns) or ANYONE, hop)
            for key, sql in (doc.get("data") or {}).items() if doc.get("kind") == "ConfigMap" else []:
                for number, line in enumerate(str(sql).splitlines()):
                    for quoted in _SQL_NAME.findall(line):
                        token = quoted[0] or quoted[1]
                        other = _sql_owner(w, token, tenant)
                        if other is not None and other != tenant:
                            what = f"bootstrap SQL of {tenant} ({key}, line {number + 1}) names {token}"
                            hop = Hop(rel, text.line(line.strip(), start), what)
                            w.add("data", tenant, other, hop)


#: The admin path of a pool's Jobs (targets/pool_bootstrap.py ADMIN_FILE; ``pool-`` is no tenant's name).
POOL_ADMIN_FILE = "pool-admin.yaml"


def _pool_admin(w: World, path: Path, text: Text, tier: str) -> None:
    """The admin Secret's store and ExternalSecret stay in the pools namespace, and the store
    assumes that pool's reader, never a tenant's (the pools namespace would read its secrets)."""
    pools_ns, rel = naming.pools_namespace_of(w.organization), w.rel(path)
    for start, doc in w.memo.yaml_docs(path):
        meta = doc.get("metadata", {})
        ns = str(meta.get("namespace", ""))
        if ns != pools_ns:
            what = f"{doc.get('kind')} {meta.get('name')} of the pool admin path in namespace {ns}"
            hop = Hop(rel, text.line(f"namespace: {ns}", start), what)
            w.add("identity", ANYONE, w.owner_of_namespace(ns) or ANYONE, hop)
        if doc.get("kind") == "SecretStore":
            role = str(doc.get("spec", {}).get("provider", {}).get("aws", {}).get("role", ""))
            if not role.endswith(f"-{naming.pool_root(tier)}-secret-reader"):
                hop = Hop(rel, text.line("role:", start), f"SecretStore {meta.get('name')} of pool {tier} assumes {role}")
                w.add("identity", ANYONE, _role_owner(w, role), hop)


# --- Terraform: data-store security groups, IRSA and reader trusts, S3 and KMS grants --------


def _terraform(w: World, roots: _Roots) -> None:
    """Each root's findings, in root order: a tenant root's as made when it was parsed, a pool
    root's now (its clients are the tenant roots that read its state)."""
    for name in sorted({*roots.owned, *roots.pools}):
        if name in roots.owned:
            w.findings.extend(roots.owned[name])
        else:
            _judge_root(w, w.rendered / "terraform" / w.env / name, roots.pools[name])


def _judge_root(w: World, root: Path, doc: dict[str, Any]) -> None:
    """One root's data-store ingress, IRSA, reader trusts and pool grants (``doc``: its parsed ``main.tf``)."""
    main = root / "main.tf"
    text = Text(w.rel(main), main.read_text(encoding="utf-8"))
    if root.name.startswith("pool-"):
        clients, owner = w.pools.get(root.name, set()), None
    else:
        owner = root.name.removeprefix("tenant-")
        clients = {owner}
    _data_ingress(w, doc, text, owner, clients, _pool_records(root))
    if owner is not None:
        _irsa(w, doc, text, owner)
        _reader_trust(w, doc, text, owner)
    else:
        _pool_bucket(w, doc, text, root.name, clients)
        _pool_reader_trust(w, doc, text, root.name, clients)


def _pool_records(root: Path) -> set[str]:
    """The tenants a pool root's ``tenants/*.json`` name (what ``local.pool_tenants`` holds)."""
    out = set()
    for path in sorted((root / "tenants").glob("*.json")):
        try:
            out.add(str(json.loads(path.read_text(encoding="utf-8"))["tenant"]))
        except (ValueError, KeyError, TypeError):
            out.add(ANYONE)  # unreadable: Terraform would fail or admit who knows whom
    return out


def group_of(target_sg: str) -> str:
    """``db`` of ``aws_security_group.db.id``."""
    return target_sg.removeprefix("${").split(".")[1] if target_sg.count(".") >= 2 else ""


def _data_ingress(w: World, doc: dict[str, Any], text: Text, owner: str | None, clients: set[str], records: set[str]) -> None:
    """Rules admitting traffic to the database and cache groups: only ``clients``' pod groups
    (``records``: the tenants of the root's per-tenant files, for ``for_each = local.pool_tenants``)."""
    data_groups = {"db", "cache"}
    label = owner or "pool"
    for rtype in ("aws_security_group_rule", "aws_vpc_security_group_ingress_rule"):
        for _, name, body in _blocks(doc, "resource", rtype):
            target_sg = str(body.get("security_group_id", ""))
            if not any(f"aws_security_group.{g}." in target_sg for g in data_groups) or body.get("type", "ingress") != "ingress":
                continue
            start = text.line(f'resource "{rtype}" "{name}"')
            victims = sorted(clients) or [label]
            for key in ("cidr_blocks", "cidr_ipv4", "ipv6_cidr_blocks", "cidr_ipv6", "prefix_list_ids"):
                if body.get(key):
                    hop = Hop(text.path, text.line(key, start), f"{name} admits {body[key]}")
                    for victim in victims:
                        w.add("network", ANYONE, victim, hop)
            # for_each = toset(["a", "b"]): the tenants whose pod groups the rule admits
            admitted = set(re.findall(r'"([A-Za-z0-9-]+)"', str(body.get("for_each", ""))))
            if "local.pool_tenants" in str(body.get("for_each", "")):
                admitted |= records
            for extra in sorted(admitted - clients):
                hop = Hop(text.path, text.line("for_each", start), f"{name} admits the pods of {extra}")
                for victim in victims:
                    if victim != extra:
                        w.add("network", extra, victim, hop)
            source = str(body.get("source_security_group_id") or body.get("referenced_security_group_id") or "")
            if owner is None and group_of(target_sg) == "db" and source.endswith(f"outputs.{POOL_ADMIN_OUTPUT}}}"):
                continue  # a pool's database and the platform's bootstrap Jobs (targets/pool_bootstrap.py)
            if source and "pod_security_group_ids[each.key]" not in source:
                hop = Hop(text.path, text.line("security_group_id", start + 1), f"{name} admits group {source}")
                for victim in victims:
                    w.add("network", ANYONE, victim, hop)


def _irsa(w: World, doc: dict[str, Any], text: Text, tenant: str) -> None:
    own_ns = naming.namespace(tenant)
    for _, name, body in _blocks(doc, "module"):
        providers = body.get("oidc_providers")
        if not providers:
            continue
        start = text.line(f'module "{name}"')
        for provider in providers.values():
            for subject in provider.get("namespace_service_accounts", []):
                ns = str(subject).split(":")[0]
                if ns != own_ns:
                    hop = Hop(text.path, text.line(str(subject), start), f"IRSA role {body.get('name')} trusts {subject}")
                    w.add("identity", w.owner_of_namespace(ns) or ANYONE, tenant, hop)
        if body.get("trust_condition_test", "StringEquals") != "StringEquals":
            hop = Hop(
                text.path,
                text.line("trust_condition_test", start),
                f"IRSA role {body.get('name')} trust uses {body['trust_condition_test']}",
            )
            w.add("identity", ANYONE, tenant, hop)
        for sid, grant in (body.get("inline_policy_permissions") or {}).items():
            _grant(w, text, start, tenant, str(sid), grant)


def _grant(w: World, text: Text, start: int, tenant: str, sid: str, grant: dict[str, Any]) -> None:
    """An IRSA permission: S3 only within the tenant's prefix, KMS only its own key."""
    prefix = naming.tenant_s3_prefix(tenant)
    actions = [str(a) for a in grant.get("actions", [])]
    for resource in [str(r) for r in grant.get("resources", [])]:
        line = text.line(resource, start)
        if resource.startswith("arn:aws:s3:::"):
            path = resource.removeprefix("arn:aws:s3:::")
            bucket, _, key = path.partition("/")
            if "-pool-" not in bucket:
                continue
            if key:
                if not key.startswith(prefix):
                    w.add("data", tenant, _prefix_owner(w, key), Hop(text.path, line, f"{sid} grants {actions} on {resource}"))
            else:
                prefixes = [v for c in grant.get("condition", []) if c.get("variable") == "s3:prefix" for v in c.get("values", [])]
                if not prefixes or any(not str(p).startswith(prefix) for p in prefixes):
                    w.add("data", tenant, ANYONE, Hop(text.path, line, f"{sid} lists {resource} beyond {prefix}"))
        elif any(a.startswith("kms:") for a in actions) and resource not in ("${module.kms.key_arn}",):
            w.add("data", tenant, ANYONE, Hop(text.path, line, f"{sid} grants {actions} on key {resource}"))
        elif resource == "*":
            w.add("data", tenant, ANYONE, Hop(text.path, line, f"{sid} grants {actions} on every resource"))


def _prefix_owner(w: World, key: str) -> str:
    return next((t for t in w.tenants if key.startswith(naming.tenant_s3_prefix(t))), ANYONE)


def _reader_trust(w: World, doc: dict[str, Any], text: Text, tenant: str) -> None:
    own_ns = naming.namespace(tenant)
    for _, name, body in _blocks(doc, "data", "aws_iam_policy_document"):
        if name != "secret_reader_trust":
            continue
        start = text.line(f'data "aws_iam_policy_document" "{name}"')
        for statement in _statements(body):
            tags = [c for c in _conditions(statement) if c.get("variable") == "aws:RequestTag/esoNamespace"]
            values = [str(v) for c in tags for v in c.get("values", [])]
            if not tags or _loose_test(tags) or any(v != own_ns for v in values):
                hop = Hop(
                    text.path,
                    text.line(str(statement.get("sid", "statement")), start),
                    f"secret reader of {tenant} trusts esoNamespace {values or 'any'}",
                )
                targets = [w.owner_of_namespace(v) or ANYONE for v in values if v != own_ns] or [ANYONE]
                for source in targets:
                    w.add("identity", source, tenant, hop)


def _pool_reader_trust(w: World, doc: dict[str, Any], text: Text, pool: str, clients: set[str]) -> None:
    """A pool's reader (the admin secret: every pooled tenant's data) trusts ESO for the pools
    namespace only: a tenant namespace trusted there reaches every tenant of the pool."""
    pools_ns = naming.pools_namespace_of(w.organization)
    for _, name, body in _blocks(doc, "data", "aws_iam_policy_document"):
        if name != "pool_reader_trust":
            continue
        start = text.line(f'data "aws_iam_policy_document" "{name}"')
        for statement in _statements(body):
            tags = [c for c in _conditions(statement) if c.get("variable") == "aws:RequestTag/esoNamespace"]
            values = [str(v) for c in tags for v in c.get("values", [])]
            if tags and not _loose_test(tags) and all(v == pools_ns for v in values):
                continue
            what = f"reader of {pool}'s admin secret trusts esoNamespace {values or 'any'}"
            hop = Hop(text.path, text.line(str(statement.get("sid", "statement")), start), what)
            for source in [w.owner_of_namespace(v) or ANYONE for v in values if v != pools_ns] or [ANYONE]:
                for victim in sorted(clients - {source}) or [ANYONE]:
                    w.add("identity", source, victim, hop)


def _loose_test(conditions: list[dict[str, Any]]) -> bool:
    """Any condition matching by pattern (StringLike) instead of exactly."""
    return any(c.get("test") != "StringEquals" for c in conditions)


def _pool_bucket(w: World, doc: dict[str, Any], text: Text, pool: str, clients: set[str]) -> None:
    """The pool bucket keeps each tenant in its prefix for every principal (data_isolation.py)."""
    buckets = [(n, b) for _, n, b in _blocks(doc, "module") if n == "bucket"]
    if not buckets:
        return
    _, bucket = buckets[0]
    start = text.line('module "bucket"')
    policy = [b for _, n, b in _blocks(doc, "data", "aws_iam_policy_document") if n == "bucket"]
    fenced = bool(policy) and any(
        s.get("sid") == "TenantPrincipalOnlyOwnPrefix"
        and s.get("effect") == "Deny"
        and any("${aws:PrincipalTag/tenant}" in str(r) for r in s.get("not_resources", []))
        for s in _statements(policy[0])
    )
    attached = bucket.get("attach_policy") is True and "aws_iam_policy_document.bucket" in str(bucket.get("policy", ""))
    if not (fenced and attached):
        hop = Hop(text.path, start, f"bucket {bucket.get('bucket')} has no policy keeping each tenant principal in its prefix")
        for tenant in sorted(clients):
            w.add("data", ANYONE, tenant, hop)


# --- output -----------------------------------------------------------------------------------


def to_text(findings: list[Finding]) -> str:
    if not findings:
        return "isolation: no path between tenants\n"
    lines = [str(f) for f in findings]
    lines.append(f"isolation: {len(findings)} path{'s' if len(findings) != 1 else ''} between tenants")
    return "\n".join(lines) + "\n"


def to_json(findings: list[Finding]) -> str:
    return json.dumps({"ok": not findings, "findings": [f.as_dict() for f in findings]}, indent=2) + "\n"
