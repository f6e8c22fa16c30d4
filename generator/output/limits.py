"""Consumer limits, checked at render: what the API server, Argo CD and GitHub would refuse.

Kubernetes objects (``rendered/argocd``, ``rendered/migrations``): serialized under the
request limit (1.5 MiB), annotations under 256 KiB, and the whole object under 256 KiB when
the Application that syncs it applies client-side (the last-applied annotation holds the
object; ``ServerSideApply=true`` lifts that); names within 253 (DNS subdomain) and
namespaces, label values and Application names within 63. Workflows: a static matrix of at
most 256 jobs. A breach is an error at the catalog line that grows the object.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from generator.errors import CatalogError, Location
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
#: GitHub Actions: jobs one matrix may generate.
MAX_MATRIX_JOBS = 256
#: Kubernetes manifests we render (Helm values and Terraform are not objects).
K8S_PREFIXES = ("rendered/argocd/", "rendered/migrations/")
#: Below this many bytes of YAML, no object of the file can reach MAX_ANNOTATIONS as JSON.
SMALL_FILE = MAX_ANNOTATIONS // 2
_LABEL_KINDS = frozenset({"Namespace", "Application", "Service"})
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SSA = "ServerSideApply=true"
_TENANT_PATH = re.compile(r"^tenants/([^/]+)\.ya?ml$")


def check(model: Model, files: dict[str, bytes], sources: dict[str, list[str]], declared: Iterable[Declared]) -> list[CatalogError]:
    """Every limit breach in the render, at the catalog line that grows the object."""
    blame = {path: c.at for path, provides, consumes, _ in declared for c in (*provides, *consumes) if c.at is not None}
    manifests = [path for path in files if path.startswith(K8S_PREFIXES)]
    # Parsing every manifest would cost more than rendering it: small files are only scanned
    # for their names and labels (the emitter's fixed layout), big ones are parsed in full.
    docs = {path: _load(files[path]) if len(files[path]) >= SMALL_FILE else _scan(files[path]) for path in manifests}
    server_side = _server_side({path: _load(files[path]) for path in manifests if _SSA.encode() in files[path]})
    errors: list[CatalogError] = []
    for path, objects in docs.items():
        where = blame.get(path) or _grower(model, sources.get(path, []))
        big = len(files[path]) >= SMALL_FILE
        ssa = any(fnmatch.fnmatchcase(path, pattern) for pattern in server_side)
        for obj in objects:
            problems = list(_object_problems(obj, big, ssa))
            if problems:
                at = _owner(model, obj) or where
                errors += [CatalogError(at, f"{path}: {problem}") for problem in problems]
    for path, data in files.items():
        if path.startswith(".github/workflows/"):
            for job, count in _matrices(data):
                if count > MAX_MATRIX_JOBS:
                    where = _grower(model, sources.get(path, []))
                    errors.append(
                        CatalogError(where, f"{path}: job {job}'s matrix has {count} jobs; GitHub runs at most {MAX_MATRIX_JOBS}")
                    )
    return errors


def _load(data: bytes) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(data, Loader=_LOADER) if isinstance(d, dict)]


_DOC = re.compile(rb"^---$", re.MULTILINE)
_KIND = re.compile(rb"^kind: (.*)$", re.MULTILINE)
_META = re.compile(rb"^metadata:\n((?:  .*\n)*)", re.MULTILINE)
_NAME = re.compile(rb"^  name: (.*)$", re.MULTILINE)
_LABELS = re.compile(rb"^  labels:\n((?:    .*\n)*)", re.MULTILINE)
_PAIR = re.compile(rb"^    ([^:\n]+): (.*)$", re.MULTILINE)


def _scan(data: bytes) -> list[dict[str, Any]]:
    """Kind, name and labels of each document of a small manifest, from the emitter's block
    layout (top-level keys at column 0, metadata fields at 2), without a YAML parse."""
    out: list[dict[str, Any]] = []
    for doc in _DOC.split(data):
        kind, meta = _KIND.search(doc), _META.search(doc)
        if kind is None or meta is None:
            continue
        block = meta.group(1)
        name = _NAME.search(block)
        labels = _LABELS.search(block)
        pairs = {_unquote(k): _unquote(v) for k, v in _PAIR.findall(labels.group(1))} if labels else {}
        out.append({"kind": _unquote(kind.group(1)), "metadata": {"name": _unquote(name.group(1)) if name else "", "labels": pairs}})
    return out


def _unquote(raw: bytes) -> str:
    text = raw.decode("utf-8").strip()
    return str(json.loads(text)) if text.startswith('"') else text.strip("'")


def _object_problems(obj: dict[str, Any], big: bool, ssa: bool) -> Iterator[str]:
    meta = obj.get("metadata") or {}
    kind, name = str(obj.get("kind", "")), str(meta.get("name", ""))
    what = f"{kind} {name}"
    limit = MAX_LABEL if kind in _LABEL_KINDS else MAX_NAME
    if len(name) > limit:
        yield f"{what}: name is {len(name)} characters; a {kind} name may have at most {limit}"
    for key, value in (meta.get("labels") or {}).items():
        if len(str(value)) > MAX_LABEL:
            yield f"{what}: label {key} is {len(str(value))} characters; label values may have at most {MAX_LABEL}"
    if not big:
        return
    annotations = sum(len(k) + len(str(v)) for k, v in (meta.get("annotations") or {}).items())
    if annotations > MAX_ANNOTATIONS:
        yield f"{what}: annotations total {annotations} bytes; the API server accepts at most {MAX_ANNOTATIONS}"
    size = len(json.dumps(obj, separators=(",", ":")))
    if size > MAX_OBJECT:
        yield f"{what}: {size} bytes serialized; the API server accepts at most {MAX_OBJECT} per object"
    elif size > MAX_ANNOTATIONS and not ssa:
        yield (
            f"{what}: {size} bytes serialized; client-side apply stores the object in an annotation limited to "
            f"{MAX_ANNOTATIONS} bytes: sync it with {_SSA} or make it smaller"
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


def _owner(model: Model, obj: dict[str, Any]) -> Location | None:
    """The catalog entry an object belongs to, by its labels: an add-on's values, a tenant's name."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    addon = model.catalog.of("addon").get(str(labels.get("companyos.io/addon", "")))
    if addon is not None:
        return addon.locate("values", key=True)
    tenant = model.catalog.tenants.get(str(labels.get("companyos.io/tenant", "")))
    return tenant.locate("name", key=True) if tenant is not None else None


def _grower(model: Model, sources: list[str]) -> Location:
    """The tenant file (its ``name`` line) that a shared file grows with: the last tenant among
    its sources; else its first source."""
    tenants = [m.group(1) for s in sources if (m := _TENANT_PATH.match(s))]
    if tenants:
        entry = model.catalog.tenants.get(tenants[-1])
        if entry is not None:
            return entry.locate("name")
    return Location(sources[0] if sources else "catalog/platform.yaml")
