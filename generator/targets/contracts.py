"""What a rendered object provides to, and consumes from, the rest of the render.

Targets attach :class:`Contract` records to each ``RenderedFile`` (``provides``/``consumes``);
``output/contracts.py`` checks that every consumed contract has a producer in the same render.
A contract is ``(kind, scope, name)`` plus a ``detail`` the two sides must agree on (the
service account an IAM role's trust names, the account a secret lives in, the add-on that
provides a CRD kind) and the catalog ``Location`` that made it. Frozen and small: the parallel
renderer sends them back from its workers. Which kinds are enforced: ``output/contracts.STRICT``.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from generator.errors import Location

if TYPE_CHECKING:
    from generator.model.resolve import Model

Kind = Literal[
    "secret",
    "iam_role",
    "namespace",
    "service_account",
    "dns_name",
    "certificate",
    "crd_kind",
    "prometheus_endpoint",
    "terraform_output",
    "argocd_kind",
    "secret_store",
    "prober_endpoint",
    "dashboard_sidecar",
    "sns_topic",
    "flag_source",
    "otlp_endpoint",
    "api_service",
    "ingress_class",
    "ingress_group",
    "ecs_task",
    "argocd_cluster",
]
KINDS: tuple[Kind, ...] = (
    "secret",
    "iam_role",
    "namespace",
    "service_account",
    "dns_name",
    "certificate",
    "crd_kind",
    "prometheus_endpoint",
    "terraform_output",
    "argocd_kind",
    "secret_store",
    "prober_endpoint",
    "dashboard_sidecar",
    "sns_topic",
    "flag_source",
    "otlp_endpoint",
    "api_service",
    "ingress_class",
    "ingress_group",
    "ecs_task",
    "argocd_cluster",
)

#: API groups the Kubernetes API server serves itself: their kinds need no add-on. (Argo CD's
#: own kinds come with Argo CD, the one prerequisite installed by hand: docs/delivery.md.)
BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "policy",
        "autoscaling",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
    }
)
ARGOCD_KINDS = frozenset({"argoproj.io/Application", "argoproj.io/AppProject", "argoproj.io/ApplicationSet"})
#: CRDs every EKS cluster has without an add-on (the VPC resource controller's, for pod
#: security groups); the shared root that creates the cluster provides them.
EKS_CRDS: tuple[str, ...] = ("vpcresources.k8s.aws/SecurityGroupPolicy",)


class Contract(NamedTuple):
    """One promise (provided) or need (consumed). ``scope`` is the environment (or "" for
    repository-wide); ``name`` is what is matched; ``detail`` is compared where both sides
    give one; ``at`` is the catalog line that caused it (else the file's first source).
    A named tuple, not a dataclass: a 10,000-tenant check rebuilds millions of them from the
    unit manifests, and a tuple is built several times faster."""

    kind: Kind
    name: str
    scope: str
    detail: str = ""
    at: Location | None = None

    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.scope, self.name)


def gvk(api_version: str, kind: str) -> str:
    """``group/Kind`` of an object (the core group is the empty string)."""
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    return f"{group}/{kind}"


def is_crd(group_kind: str) -> bool:
    return group_kind.split("/", 1)[0] not in BUILTIN_GROUPS and group_kind not in ARGOCD_KINDS


def project_kind(project: str, group_kind: str) -> str:
    """The name of an ``argocd_kind`` contract: this kind is whitelisted in that AppProject."""
    return f"{project}:{group_kind}"


def whitelist(project: str, env: str, entries: Iterable[dict[str, str]], at: Location | None = None) -> list[Contract]:
    """What an AppProject provides: each whitelisted ``{group, kind}`` (``*`` stays literal:
    the checker treats ``project:*/*`` as covering every kind)."""
    return [Contract("argocd_kind", project_kind(project, f"{e['group']}/{e['kind']}"), env, at=at) for e in entries]


def deployed_kinds(documents: Iterable[dict[str, Any]], project: str, env: str, at: Location | None = None) -> list[Contract]:
    """What objects deployed by an Application of ``project`` consume: their kind in the
    project's whitelist, and the CRD of every kind the API server does not serve itself."""
    out: list[Contract] = []
    for group_kind in sorted({gvk(str(doc.get("apiVersion", "")), str(doc.get("kind", ""))) for doc in documents}):
        out.append(Contract("argocd_kind", project_kind(project, group_kind), env, at=at))
        if is_crd(group_kind):
            out.append(Contract("crd_kind", group_kind, env, at=at))
    return out


def crd_uses(group_kinds: Iterable[str], env: str, at: Location | None = None) -> list[Contract]:
    return [Contract("crd_kind", gk, env, at=at) for gk in sorted(set(group_kinds)) if is_crd(gk)]


def covers(pattern: str, text: str) -> bool:
    """``fnmatchcase(text, pattern)``, without compiling a regex per pattern when ``*`` is the
    only wildcard (IAM resource ARNs: each tenant's differ, so fnmatch's cache never hits)."""
    if "?" in pattern or "[" in pattern:
        return fnmatchcase(text, pattern)
    first, *middle = pattern.split("*")
    if not middle:
        return text == pattern
    last = middle.pop()
    end = len(text) - len(last)
    if end < len(first) or not text.startswith(first) or not text.endswith(last):
        return False
    pos = len(first)
    for part in middle:  # leftmost match of each fixed part is the one that leaves most room
        found = text.find(part, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return True


def at(model: Model, kind: str, name: str, *keypath: str | int) -> Location:
    """The catalog line of ``keypath`` in the ``kind`` file ``name``: the key's own line for a
    mapping key, its nearest ancestor if absent, line 1 for a built-in definition."""
    entry = model.catalog.of(kind).get(name)
    if entry is None:
        return Location(model.source(kind, name))
    return entry.locate(*keypath, key=bool(keypath) and isinstance(keypath[-1], str))
