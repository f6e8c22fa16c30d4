"""Consumer limits, checked at render: what the API server, Argo CD and GitHub would refuse.

Kubernetes objects (``rendered/argocd``, ``rendered/migrations``): serialized under the
request limit (1.5 MiB), annotations under 256 KiB, and the whole object under 256 KiB when
the Application that syncs it applies client-side (the last-applied annotation holds the
object; ``ServerSideApply=true`` lifts that); names within 253 (DNS subdomain) and
namespaces, label values and Application names within 63, also those an ApplicationSet
generates from its per-tenant element files. Workflows: a static matrix of at most 256 jobs;
the Terraform roots of one layer, batched over 256 jobs, within each job's timeout. A breach is an error at the catalog line that grows the object. Each file is
examined where it is finished (:func:`facts`, in the render workers); :func:`judge` only
turns the breaches found into errors.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from generator.errors import CatalogError, Location
from generator.formats import emit
from generator.model.resolve import Model
from generator.output.contracts import Declared

#: The API server's (etcd's) request size limit.
MAX_OBJECT = int(1.5 * 1024 * 1024)
#: Total size of an object's annotations (keys + values).
MAX_ANNOTATIONS = 256 * 1024
#: DNS subdomain names (most object names) and DNS labels (namespaces, label values,
#: Argo CD Application names, which become the ``app.kubernetes.io/instance`` label).
MAX_NAME = 253
MAX_LABEL = 63
#: GitHub Actions: jobs one matrix may generate ("Job matrix - A job matrix can generate a
#: maximum of 256 jobs per workflow run", docs.github.com, Actions limits).
MAX_MATRIX_JOBS = 256
#: GitHub-hosted runners: "Each job in a workflow can run for up to 6 hours of execution time"
#: (same page); a job's own ``timeout-minutes`` may only be lower.
MAX_JOB_MINUTES = 360
#: Our budget per Terraform root in one batched job (terraform-batch.sh: fmt, init, validate,
#: plan and the conftest policies; or an apply), providers from the plugin cache. Not a GitHub
#: limit: what the job's timeout must leave room for when every root of a layer changes.
MINUTES_PER_ROOT = {"plan": 3, "apply": 10}
_ROOT = re.compile(r"^rendered/terraform/(?:(org)|([^/]+)/(shared|pool|tenant)[^/]*)/main\.tf$")
#: The drift workflow's shards: each plans every N-th of all roots (targets/workflows.py).
_DRIFT_JOB = re.compile(r"^drift-(1)-of-(\d+)$")
_BATCHED_JOB = re.compile(r"^(plan|apply)-(?:([^/]+)-)?(org|shared|pool|tenant)(?:-(\d+)-of-(\d+))?$")
#: The per-tenant element files of the ApplicationSets' git generators (targets/argocd).
_ELEMENTS = re.compile(r"^rendered/argocd/[^/]+/cells/[^/]+/[^/]+\.json$")
#: Element fields the ApplicationSet template puts in a name or a label value (63 characters):
#: the Application name (also its app.kubernetes.io/instance label), the destination namespace
#: and the labels; ``project`` names an AppProject (a DNS subdomain, 253).
_ELEMENT_LIMITS = {
    "name": MAX_LABEL,
    "namespace": MAX_LABEL,
    "tenant": MAX_LABEL,
    "service": MAX_LABEL,
    "tier": MAX_LABEL,
    "wave": MAX_LABEL,
    "project": MAX_NAME,
}
#: Kubernetes manifests we render (Helm values and Terraform are not objects).
K8S_PREFIXES = ("rendered/argocd/", "rendered/migrations/")
#: Below this many bytes of YAML, no object of the file can reach MAX_ANNOTATIONS as JSON.
SMALL_FILE = MAX_ANNOTATIONS // 2
_LABEL_KINDS = frozenset({"Namespace", "Application", "Service"})
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SSA = "ServerSideApply=true"
_TENANT_PATH = re.compile(r"^tenants/([^/]+)\.ya?ml$")


#: (the object's ``companyos.io/addon`` label, its ``companyos.io/tenant`` label, the problem,
#: whether it is one only when the file is applied client-side).
Breach = tuple[str, str, str, bool]


@dataclass(frozen=True)
class Facts:
    """What the limits check needs from one rendered file, found where the file is finished
    (``render.finalize``, in the render workers): the parent then parses nothing."""

    path: str
    breaches: tuple[Breach, ...] = ()
    #: Path patterns its ``ServerSideApply=true`` Applications sync.
    server_side: tuple[str, ...] = ()
    #: (job, jobs its static matrix generates) of a workflow.
    matrices: tuple[tuple[str, int], ...] = ()
    #: (job, its timeout-minutes) of a workflow's jobs whose matrix is computed at run time.
    batched: tuple[tuple[str, int], ...] = ()


def record(found: Facts | None) -> dict[str, list[Any]] | None:
    """What a unit manifest records of a file's facts: the non-empty fields (None when all
    are), so a reused file is judged without being read or parsed again."""
    if found is None:
        return None
    out: dict[str, list[Any]] = {}
    for key in ("breaches", "server_side", "matrices", "batched"):
        value = getattr(found, key)
        if value:
            out[key] = [list(v) if isinstance(v, tuple) else v for v in value]
    return out or None


def recorded(path: str, entry: Mapping[str, Any]) -> Facts:
    """The :class:`Facts` a manifest entry records (see :func:`record`)."""
    data = entry.get("limits") or {}
    return Facts(
        path,
        breaches=tuple((str(a), str(t), str(p), bool(c)) for a, t, p, c in data.get("breaches", ())),
        server_side=tuple(str(x) for x in data.get("server_side", ())),
        matrices=tuple((str(j), int(n)) for j, n in data.get("matrices", ())),
        batched=tuple((str(j), int(n)) for j, n in data.get("batched", ())),
    )


def check(model: Model, files: dict[str, bytes], sources: Mapping[str, Sequence[str]], declared: Iterable[Declared]) -> list[CatalogError]:
    """Every limit breach in the render, at the catalog line that grows the object."""
    return judge(model, [f for path, data in files.items() if (f := facts(path, data)) is not None], sources, declared)


def facts(path: str, data: bytes) -> Facts | None:
    """The :class:`Facts` of one file (None for a file no limit applies to)."""
    if path.startswith(".github/workflows/"):
        return Facts(path, matrices=tuple(_matrices(data)), batched=tuple(_batched(data)))
    if _ELEMENTS.match(path):
        return Facts(path, tuple(_element_breaches(data)))
    if not path.startswith(K8S_PREFIXES):
        return None
    # Parsing every manifest would cost more than rendering it: small files are only scanned
    # for their names and labels (the emitter's fixed layout), and only when a metadata line
    # is long enough to hold a breach; big ones are parsed in full.
    big = len(data) >= SMALL_FILE
    loaded = _load(data) if big or _SSA.encode() in data else []
    objects = loaded if big else _scan(data) if _long_metadata(data) else []
    breaches: list[Breach] = []
    for obj in objects:
        problems = list(_object_problems(obj, big))
        if problems:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            addon, tenant = str(labels.get("companyos.io/addon", "")), str(labels.get("companyos.io/tenant", ""))
            breaches += [(addon, tenant, problem, client_side) for problem, client_side in problems]
    server_side = _server_side({path: loaded}) if _SSA.encode() in data else []
    return Facts(path, tuple(breaches), tuple(server_side))


def judge(model: Model, found: Iterable[Facts], sources: Mapping[str, Sequence[str]], declared: Iterable[Declared]) -> list[CatalogError]:
    """The errors of every file's :class:`Facts`: manifests first, then workflows, each in
    render order. Blame is looked up only for a file with a breach."""
    found = list(found)
    server_side = [pattern for f in found for pattern in f.server_side]
    breaching = {f.path for f in found if f.breaches}
    blame: dict[str, Location] = {}
    if breaching:
        blame = {
            path: c.at for path, provides, consumes, _ in declared if path in breaching for c in (*provides, *consumes) if c.at is not None
        }
    errors: list[CatalogError] = []
    for f in found:
        if not f.breaches:
            continue
        where = blame.get(f.path) or _grower(model, sources.get(f.path, []))
        ssa = any(fnmatch.fnmatchcase(f.path, pattern) for pattern in server_side)
        for addon, tenant, problem, client_side in f.breaches:
            if not (client_side and ssa):
                errors.append(CatalogError(_owner(model, addon, tenant) or where, f"{f.path}: {problem}"))
    for f in found:
        for job, count in f.matrices:
            if count > MAX_MATRIX_JOBS:
                where = _grower(model, sources.get(f.path, []))
                errors.append(CatalogError(where, f"{f.path}: job {job}'s matrix has {count} jobs; GitHub runs at most {MAX_MATRIX_JOBS}"))
    errors += _root_count(model, found, sources)
    return errors


def _element_breaches(data: bytes) -> Iterator[Breach]:
    """Names and label values an ApplicationSet generates from one tenant's element file: the
    Applications are created by the ApplicationSet controller, so no rendered object shows
    them; a value over its limit would fail only at sync, for that tenant alone."""
    for element in json.loads(data):
        for key, limit in _ELEMENT_LIMITS.items():
            value = str(element.get(key, ""))
            if len(value) > limit:
                problem = f"generated Application {element.get('name')}: {key} '{value}' is {len(value)} characters; at most {limit}"
                yield "", str(element.get("tenant", "")), problem, False


def _batched(data: bytes) -> Iterator[tuple[str, int]]:
    workflow = yaml.load(data, Loader=_LOADER)
    for job, body in ((workflow or {}).get("jobs") or {}).items():
        matrix = ((body or {}).get("strategy") or {}).get("matrix")
        if isinstance(matrix, dict) and isinstance(matrix.get("include"), str):
            yield str(job), int(body.get("timeout-minutes", MAX_JOB_MINUTES))


def _root_count(model: Model, found: list[Facts], sources: Mapping[str, Sequence[str]]) -> list[CatalogError]:
    """Terraform roots per batched job: a layer of N roots runs as at most 256 jobs of
    ceil(N / 256) roots each, one after another; every root of the layer changed (a template
    edit) must still fit the job's timeout (and GitHub's 6 hours)."""
    roots: dict[tuple[str, str], int] = {}
    for path in sources:
        m = _ROOT.match(path) if path.endswith("/main.tf") else None  # a root's one main.tf: ~1 path in 80
        if m:
            env, layer = ("", "org") if m.group(1) else (m.group(2), m.group(3))
            roots[(env, layer)] = roots.get((env, layer), 0) + 1
    errors: list[CatalogError] = []
    for f in found:
        for job, timeout in f.batched:
            drift = _DRIFT_JOB.match(job) if f.path.endswith("/drift.yml") else None
            if drift is not None:
                errors += _drift_count(model, f.path, job, timeout, int(drift.group(2)), roots, sources)
                continue
            m = _BATCHED_JOB.match(job)
            if m is None:
                continue
            mode, env, layer = m.group(1), m.group(2) or "", m.group(3)
            if m.group(4) and m.group(4) != "1":
                continue  # shard K of N takes every N-th root from the K-th: the first holds the most
            total = sum(n for (e, lay), n in roots.items() if lay == layer and (not env or e == env))
            count, per_job, needed, limit = _job_minutes(mode, total, int(m.group(5) or 1), timeout)
            if needed > limit:
                growers = [
                    p for p in sources if (r := _ROOT.match(p)) and (r.group(3) or "org") == layer and (not env or r.group(2) == env)
                ]
                where = _grower(model, sorted({s for p in growers for s in sources[p]}))
                errors.append(
                    CatalogError(
                        where,
                        f"{f.path}: job {job} would {mode} {count} {layer} roots"
                        + (f" (every {m.group(5)}th of the layer's {total})" if m.group(5) else "")
                        + f" as {per_job} per job "
                        f"(~{needed} minutes at {MINUTES_PER_ROOT[mode]} per root); the job may run {limit} "
                        f"(timeout-minutes, GitHub-hosted at most {MAX_JOB_MINUTES}): split the layer or raise the timeout",
                    )
                )
    return errors


def _job_minutes(mode: str, total: int, shards: int, timeout: int) -> tuple[int, int, int, int]:
    """``total`` roots over ``shards`` matrices (every N-th root each) of at most 256 jobs:
    the first shard's roots, roots per job, the minutes that job needs, and what it may run."""
    per_shard = -(-total // shards)
    per_job = -(-per_shard // MAX_MATRIX_JOBS)
    return per_shard, per_job, per_job * MINUTES_PER_ROOT[mode], min(timeout, MAX_JOB_MINUTES)


def _drift_count(
    model: Model, path: str, job: str, timeout: int, shards: int, roots: dict[tuple[str, str], int], sources: Mapping[str, Sequence[str]]
) -> list[CatalogError]:
    """The nightly drift plan: every root of the repository over ``shards`` matrices (the first
    shard holds the most) within the job's timeout."""
    total = sum(roots.values())
    per_shard, per_job, needed, limit = _job_minutes("plan", total, shards, timeout)
    if needed <= limit:
        return []
    where = _grower(model, sorted({s for p in sources if _ROOT.match(p) for s in sources[p]}))
    return [
        CatalogError(
            where,
            f"{path}: job {job} would plan {per_shard} roots (every {shards}th of all {total}) as {per_job} per job "
            f"(~{needed} minutes at {MINUTES_PER_ROOT['plan']} per root); the job may run {limit}: add drift shards (targets/workflows.py)",
        )
    ]


def _load(data: bytes) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(data, Loader=_LOADER) if isinstance(d, dict)]


_DOC = re.compile(rb"^---$", re.MULTILINE)
_KIND = re.compile(rb"^kind: (.*)$", re.MULTILINE)
_META = re.compile(rb"^metadata:\n((?:  .*\n)*)", re.MULTILINE)
_NAME = re.compile(rb"^  name: (.*)$", re.MULTILINE)
_LABELS = re.compile(rb"^  labels:\n((?:    .*\n)*)", re.MULTILINE)
_PAIR = re.compile(rb"^    ([^:\n]+): (.*)$", re.MULTILINE)


def _scan(data: bytes) -> list[dict[str, Any]]:
    """Kind, name and labels of each document of a small manifest that could breach a limit,
    from the emitter's block layout (top-level keys at column 0, metadata fields at 2),
    without a YAML parse. A document whose metadata has no line of :data:`_LONG_LINE` holds
    no name or label over its limit: it is left out unread (a tenant's namespace file holds
    ~12 documents, one of them with a long annotation line)."""
    out: list[dict[str, Any]] = []
    for doc in _DOC.split(data):
        kind, meta = _KIND.search(doc), _META.search(doc)
        if kind is None or meta is None:
            continue
        block = meta.group(1)
        if _LONG_RUN.search(block) is None:
            continue
        name = _NAME.search(block)
        labels = _LABELS.search(block)
        pairs = {_unquote(k): _unquote(v) for k, v in _PAIR.findall(labels.group(1))} if labels else {}
        out.append({"kind": _unquote(kind.group(1)), "metadata": {"name": _unquote(name.group(1)) if name else "", "labels": pairs}})
    return out


_META_BLOCK = re.compile(rb"\nmetadata:\n((?:  .*\n)*)")
#: The shortest metadata line that can hold a breach: ``    k: `` and a label value over 63.
_LONG_LINE = len("    k: ") + MAX_LABEL + 1


#: A line of at least :data:`_LONG_LINE` bytes (tried at line starts only: one pass).
_LONG_RUN = re.compile(rb"^.{%d}" % _LONG_LINE, re.MULTILINE)


def _long_metadata(data: bytes) -> bool:
    """Whether any line of a top-level metadata block is long enough to hold a name or label
    over its limit (an unquoted value is never longer than its raw text). Most files have
    none, and are not scanned further."""
    return any(_LONG_RUN.search(m.group(1)) is not None for m in _META_BLOCK.finditer(b"\n" + data))


def _unquote(raw: bytes) -> str:
    text = raw.decode("utf-8").strip()
    return str(json.loads(text)) if text.startswith('"') else text.strip("'")


def _object_problems(obj: dict[str, Any], big: bool) -> Iterator[tuple[str, bool]]:
    """Each problem of an object, and whether it is one only under client-side apply."""
    meta = obj.get("metadata") or {}
    kind, name = str(obj.get("kind", "")), str(meta.get("name", ""))
    what = f"{kind} {name}"
    limit = MAX_LABEL if kind in _LABEL_KINDS else MAX_NAME
    if len(name) > limit:
        yield f"{what}: name is {len(name)} characters; a {kind} name may have at most {limit}", False
    for key, value in (meta.get("labels") or {}).items():
        if len(str(value)) > MAX_LABEL:
            yield f"{what}: label {key} is {len(str(value))} characters; label values may have at most {MAX_LABEL}", False
    if not big:
        return
    annotations = sum(len(k) + len(str(v)) for k, v in (meta.get("annotations") or {}).items())
    if annotations > MAX_ANNOTATIONS:
        yield f"{what}: annotations total {annotations} bytes; the API server accepts at most {MAX_ANNOTATIONS}", False
    size = len(json.dumps(obj, separators=(",", ":")))
    if size > MAX_OBJECT:
        yield f"{what}: {size} bytes serialized; the API server accepts at most {MAX_OBJECT} per object", False
    elif size > MAX_ANNOTATIONS:
        yield (
            (
                f"{what}: {size} bytes serialized; client-side apply stores the object in an annotation limited to "
                f"{MAX_ANNOTATIONS} bytes: sync it with {_SSA} or make it smaller"
            ),
            True,
        )


def _server_side(docs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Path patterns of the files Applications with ``ServerSideApply=true`` sync."""
    out: list[str] = []
    for objects in docs.values():
        for obj in objects:
            spec = obj.get("spec") or {}
            if obj.get("kind") != "Application" or _SSA not in (spec.get("syncPolicy") or {}).get("syncOptions", []):
                continue
            source = spec.get("source") or {}
            if "path" in source:
                include = (source.get("directory") or {}).get("include", "*")
                out += [f"{source['path']}/{part}" for part in include.strip("{}").split(",")]
    return out


def _matrices(data: bytes) -> Iterator[tuple[str, int]]:
    """(job, jobs its static matrix generates); a matrix from an expression is not counted."""
    workflow = yaml.load(data, Loader=_LOADER)
    for job, body in ((workflow or {}).get("jobs") or {}).items():
        matrix = ((body or {}).get("strategy") or {}).get("matrix")
        if not isinstance(matrix, dict):
            continue
        count = 1
        axes = [v for k, v in matrix.items() if k not in ("include", "exclude")]
        if any(not isinstance(v, list) for v in axes):
            continue
        for axis in axes:
            count *= len(axis)
        include = matrix.get("include")
        if isinstance(include, list):
            count = (count if axes else 0) + len(include)
        yield str(job), count


def _owner(model: Model, addon_label: str, tenant_label: str) -> Location | None:
    """The catalog entry an object belongs to, by its labels: an add-on's values, a tenant's name."""
    addon = model.catalog.of("addon").get(addon_label)
    if addon is not None:
        return addon.locate("values", key=True)
    tenant = model.catalog.tenants.get(tenant_label)
    return tenant.locate("name", key=True) if tenant is not None else None


def _grower(model: Model, sources: Sequence[str]) -> Location:
    """The tenant file (its ``name`` line) that a shared file grows with: the last tenant among
    its sources; else its first source."""
    tenants = [m.group(1) for s in sources if (m := _TENANT_PATH.match(s))]
    if not tenants and emit.TENANT_FILES in sources:  # a fleet-wide file: it grows with every tenant
        tenants = sorted(model.catalog.tenants)
    if tenants:
        entry = model.catalog.tenants.get(tenants[-1])
        if entry is not None:
            return entry.locate("name")
    return Location(sources[0] if sources else "catalog/platform.yaml")
