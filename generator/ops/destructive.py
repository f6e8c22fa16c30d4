"""The destructive-change guard: what would this change delete in AWS or the cluster?

``companyos check --base REF`` compares the base ref (its catalog, resolved settings and
committed output) with a fresh render and lists every tenant, environment, Terraform root,
Argo CD Application or deletion protection the change would remove. Unless acknowledged
(``--acknowledge-destruction``, the ``allow-destruction`` PR label in CI) that fails the
check (exit 1). See docs/guardrails.md ("Destructive-change guard").
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Collection, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from generator import pipeline
from generator.catalog.folders import MANIFEST_PATH
from generator.catalog.snapshot import Baseline
from generator.errors import CatalogError
from generator.model.resolve import Model
from generator.output.ondisk import TreeFiles
from generator.output.render import RenderResult
from generator.output.tree import TreeStatus, manifest_roots, manifests_files
from generator.output.units import unit_path
from generator.policy.rules.migrations import against_base as schema_against_base
from generator.policy.rules.migrations import base_versions

ACK_LABEL = "allow-destruction"
#: Where every Argo CD object (and the per-tenant files its generators read) is rendered.
ARGOCD_DIR = "rendered/argocd"
#: ApplicationSet list-element keys that identify what the element deploys.
IDENTITY_KEYS = ("tenant", "environment", "env", "service", "name", "cluster", "namespace", "root", "path")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PROTECTED = re.compile(r"^\s*(\w*deletion_protection\w*)\s*=\s*true\b", re.MULTILINE)


@dataclass
class Destruction:
    ref: str
    items: list[str] = field(default_factory=list)
    #: Comparisons that could not run (e.g. the base catalog no longer loads).
    notes: list[str] = field(default_factory=list)
    #: CO015 errors from the schema-version comparison.
    errors: list[CatalogError] = field(default_factory=list)

    @property
    def destructive(self) -> bool:
        return bool(self.items)

    def message(self) -> str:
        lines = [f"this change would destroy (compared with {self.ref}):"]
        lines += [f"  - {item}" for item in self.items]
        return "\n".join(lines)


def _docs(data: bytes) -> Iterator[dict[str, Any]]:
    try:
        for doc in yaml.load_all(data.decode("utf-8"), Loader=_LOADER):
            if isinstance(doc, dict):
                yield doc
    except (yaml.YAMLError, UnicodeDecodeError):
        return


def _list_elements(generator: Any) -> Iterator[dict[str, Any]]:
    """List-generator elements, also inside matrix/merge generators."""
    if not isinstance(generator, dict):
        return
    listed = generator.get("list")
    if isinstance(listed, dict):
        for element in listed.get("elements") or []:
            if isinstance(element, dict):
                yield element
    for nested in ("matrix", "merge"):
        inner = generator.get(nested)
        if isinstance(inner, dict):
            for child in inner.get("generators") or []:
                yield from _list_elements(child)


def _element_id(element: dict[str, Any]) -> str:
    keys = {k: element[k] for k in IDENTITY_KEYS if isinstance(element.get(k), (str, int))}
    if not keys:
        return json.dumps(element, sort_keys=True)
    return ", ".join(f"{k}={v}" for k, v in keys.items())


def argocd_objects(files: Iterable[tuple[str, bytes]]) -> set[str]:
    """Applications and ApplicationSet elements in rendered YAML, as readable identities."""
    found: set[str] = set()
    for path, data in files:
        if path.endswith(".json") and "/cells/" in path:  # a git files generator's elements (targets/argocd)
            found.update(_generator_file(path, data))
            continue
        if not path.endswith((".yaml", ".yml")) or b"argoproj.io/" not in data:
            continue
        for doc in _docs(data):
            if doc.get("apiVersion") != "argoproj.io/v1alpha1":
                continue
            meta = doc.get("metadata")
            if not isinstance(meta, dict):
                meta = {}
            name = f"{meta.get('namespace') or 'argocd'}/{meta.get('name')}"
            if doc.get("kind") == "Application":
                found.add(f"Argo CD Application {name}")
            elif doc.get("kind") == "ApplicationSet":
                spec = doc.get("spec")
                if not isinstance(spec, dict):
                    spec = {}
                for generator in spec.get("generators") or []:
                    for element in _list_elements(generator):
                        found.add(f"Argo CD ApplicationSet {name} element ({_element_id(element)})")
    return found


def _generator_file(path: str, data: bytes) -> set[str]:
    """The elements of a per-tenant file an ApplicationSet's git files generator reads."""
    try:
        elements = json.loads(data)
    except ValueError:
        return set()
    elements = elements if isinstance(elements, list) else [elements]
    return {f"Argo CD ApplicationSet element ({_element_id(e)}) from {path}" for e in elements if isinstance(e, dict)}


def _base_files(
    base: Baseline, prefix: str, skip: Container[str] = frozenset(), among: Iterable[str] | None = None
) -> Iterator[tuple[str, bytes]]:
    """The base's files under ``prefix`` that can hold Argo CD objects or generator elements
    (but ``skip``); ``among``: only of these paths (default: every path the base has)."""
    start = prefix.rstrip("/") + "/"
    paths = base.paths(prefix) if among is None else (p for p in among if p.startswith(start))
    wanted = [p for p in paths if p not in skip and (p.endswith((".yaml", ".yml")) or fnmatch.fnmatchcase(p, "*/cells/*/*.json"))]
    return base.outputs(sorted(wanted))


def _base_manifest(
    base: Baseline, result: RenderResult | None = None, reused: Collection[str] = ()
) -> tuple[dict[str, dict[str, Any]], list[str] | None]:
    """The files the base's unit manifests list (its one fleet-wide manifest, if older), and
    the unit manifests read (None: the fleet-wide one). With ``result``: only the units whose
    manifest differs from the base's (by blob id) are read, since an equal one lists the same
    files on both sides (``check --base`` reuses most units as the base recorded them: at
    10,000 tenants, reading every manifest was a quarter of the guard). ``reused``: tenants
    whose unit the render reused from the base: its manifest in ``result`` is the base's
    (``units.assemble``), so it is not read and hashed again to learn that."""
    paths = base.unit_manifests()
    if not paths:
        return manifests_files({MANIFEST_PATH: base.file(MANIFEST_PATH)}, own=False), None
    if result is not None:
        same = {unit_path(f"tenant/{name}") for name in reused}
        paths = [p for p in paths if p not in same and (p not in result.files or not base.same(p, result.files[p]))]
    return manifests_files({p: base.file(p) for p in paths}, own=False), paths


def _roots_gone(listed: Mapping[str, Mapping[str, Any]], units: list[str] | None, result: RenderResult) -> set[str]:
    """The roots the base's ``listed`` files name that no file of ``result`` names. Every other
    unit's manifest is the base's and lists the same files on both sides, so only the roots of
    the ``units`` read can go: they are compared with those same units' files today, and a
    root missing there is confirmed against every file (a tenant's unit names its pool's and
    the shared root, which live on in the global unit). At 10,000 x 3, gathering the roots of
    all 800,000 entries was ~0.3 s of ``check --base``, whatever changed."""
    entries: Mapping[str, Mapping[str, Any]] = result.manifest["files"]
    if units is None or result.members is None:
        return manifest_roots(listed) - manifest_roots(entries)
    members = result.members
    now = {p: entries[p] for unit in units for p in members.get(unit, ())}
    gone = manifest_roots(listed) - manifest_roots(now)
    return gone - manifest_roots(entries) if gone else gone


def compare(model: Model, result: RenderResult, base: Baseline, reused: Collection[str] = frozenset()) -> Destruction:
    """Everything the working render drops compared with ``base`` (see module docstring).
    ``reused``: tenants whose inputs are the base's (``Build.reused``): their resolved
    settings are the base's too, so the base's are resolved only for the others."""
    out = Destruction(base.ref)
    items: list[str] = []
    old_tenants = base.raw("tenants/*.yaml", changed_only=True)  # an unchanged file lists the environments it lists now
    old_envs = set(base.raw("environments/*.yaml"))
    for name in sorted(set(old_tenants) - set(model.tenants)):
        items.append(f"tenant '{name}' (tenants/{name}.yaml removed)")
    current_envs = {e.name for e in model.environments}
    for name in sorted(old_envs - current_envs):
        items.append(f"environment '{name}' (environments/{name}.yaml removed)")
    current_pairs = {(d.name, d.env) for d in model.deployments}
    for name, data in sorted(old_tenants.items()):
        envs = data.get("environments") if name in model.tenants else None
        for env in envs if isinstance(envs, list) else []:
            if isinstance(env, str) and env in current_envs and (name, env) not in current_pairs:
                items.append(f"tenant '{name}' in environment '{env}' (removed from its environments)")
    listed, units = _base_manifest(base, result, reused)  # the files of the base's units whose manifest differs
    items += [f"Terraform root {root} (terraform destroy of its whole state)" for root in sorted(_roots_gone(listed, units, result))]
    same, differing = _same_as_base(result, base, ARGOCD_DIR)
    # Objects in files equal to the base's are on both sides: compare the other files only, and
    # confirm a candidate against every file (it may live on in an unchanged one). The others
    # are among ``listed``: a unit whose manifest is the base's holds the base's very files (the
    # base verified them when it was merged, this run verified the working tree's), so only
    # the differing units' files are looked at, not the ~360,000 paths of the base's folder.
    gone = argocd_objects(_base_files(base, ARGOCD_DIR, skip=same, among=listed)) - _argocd_now(result, differing)
    if gone:
        gone = argocd_objects(_base_files(base, ARGOCD_DIR)) - _argocd_now(result)
    items += sorted(gone)
    kept = set(old_tenants) & set(model.tenants)
    items += _deletion_protection(model, result, base, out.notes, kept - set(reused))
    out.items = items
    return out


def _argocd_now(result: RenderResult, paths: Iterable[str] | None = None) -> set[str]:
    """The Argo CD objects of the render's files ``paths`` (default: every file under the Argo CD folder)."""
    if paths is None:
        paths = (p for p in result.files if p.startswith(ARGOCD_DIR + "/"))
    return argocd_objects((p, result.files[p]) for p in paths)


class _SameAsBase(Container[str]):
    """The rendered paths whose bytes are the base's: every file left on disk (in ``check
    --base`` only the reused units' files: git proved them equal to the base's, or they
    were read and hashed against the base's manifest) and the held ones with the base's
    blob id. A view: at 10,000 tenants the Argo CD folder alone is ~360,000 paths."""

    def __init__(self, files: Container[str], held: Container[str], unchanged: frozenset[str]) -> None:
        self._files, self._held, self._unchanged = files, held, unchanged

    def __contains__(self, path: object) -> bool:
        return (path in self._files and path not in self._held) or path in self._unchanged


def _same_as_base(result: RenderResult, base: Baseline, prefix: str, suffix: str = "") -> tuple[_SameAsBase, list[str]]:
    """Rendered paths under ``prefix`` (ending in ``suffix``) whose bytes are the base's (a view,
    nothing read), and the others, in path order: only the held files are asked about (by blob
    id), not the fleet's 800,000 paths."""
    files = result.files
    held = files.held if isinstance(files, TreeFiles) else files.keys()  # a path not held is left on disk
    start = prefix + "/"
    under = sorted(p for p in held if p.startswith(start) and p.endswith(suffix))
    unchanged = base.unchanged({p: files[p] for p in under})
    return _SameAsBase(files, held, unchanged), [p for p in under if p not in unchanged]


def _deletion_protection(model: Model, result: RenderResult, base: Baseline, notes: list[str], tenants: Collection[str]) -> list[str]:
    """Protection turned off in the resolved settings of ``tenants`` (those on both sides whose
    inputs changed: a tenant with the base's inputs has the base's settings; a new one had
    none), or removed from a rendered Terraform file."""
    items = []
    old_model, error = pipeline.model_at(base, tenants) if tenants else (None, None)
    if error is not None:
        notes.append(f"resolved settings not compared: {error}")
    elif old_model is not None:
        for d in (d for d in model.deployments if d.name in tenants):
            old = old_model.deployment(d.name, d.env)
            if old is not None and old.settings.database.deletion_protection and not d.settings.database.deletion_protection:
                items.append(f"deletion protection of tenant '{d.name}' database in {d.env} (database.deletion_protection turned off)")
    _, changed = _same_as_base(result, base, "rendered/terraform", ".tf")  # in path order
    for path, before in base.outputs(changed):  # the others are unchanged since the base: nothing removed
        data = result.files[path]
        old_on = _PROTECTED.findall(before.decode("utf-8", "replace"))
        new_on = _PROTECTED.findall(data.decode("utf-8", "replace"))
        for attr in sorted(set(old_on)):
            if new_on.count(attr) < old_on.count(attr):
                items.append(f"{attr} = true removed in {path}")
    return items


def check_base(root: Path | None, base: Baseline) -> tuple[pipeline.Build, TreeStatus, Destruction]:
    """``check --base``: the incremental check against ``base`` (``pipeline.check_against``),
    with :func:`against_base`'s report made while the policy is judged."""
    return pipeline.check_against(root, base, lambda model, result, reused: against_base(model, result, base, reused))


def against_base(model: Model, result: RenderResult, base: Baseline, reused: Collection[str] = frozenset()) -> Destruction:
    """The full ``check --base`` comparison: destruction plus forward-only schema versions.
    The collector runs rarely: the built model and render are held, and a full collection
    walks all of them (4.5 s of one set over 30,000 deployments at 10,000 tenants)."""
    with pipeline.fewer_collections():
        out = compare(model, result, base, reused)
        out.errors = schema_against_base(model, base_versions(base.raw("catalog/services/*.yaml")), base.ref)
    return out
