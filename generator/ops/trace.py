"""``companyos explain rendered/<path>:<line>``: which catalog lines put this line there.

Nothing is recorded at render time (the render stays as fast as it was); the answer is
computed on demand by re-rendering the one file. Candidates are the catalog values, from
the files the manifest lists as the output's sources, whose text appears on the line. Each
candidate is then *proved*: the value is changed in memory, the catalog resolved again
and the one target re-rendered for the file's environment; if the line changes, that
value produced it. A candidate that cannot be changed without breaking validation is
reported as "matched by value" instead of proved. The template line is the line of the
output's template that writes the same key. See docs/catalog.md ("Tracing a rendered line").
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from generator import pipeline
from generator.catalog.folders import MANIFEST_PATH
from generator.catalog.load import LAYOUT, Catalog, Entry, FileKind
from generator.catalog.yaml_source import KeyPath, SourceDoc
from generator.errors import CatalogErrors, Location, UsageError
from generator.formats import emit
from generator.model.layers import Origin
from generator.model.resolve import Deployment, Model, resolve
from generator.output import parallel, tree
from generator.output.render import render
from generator.targets import TARGETS
from generator.targets.base import Target

#: At most this many candidate values are proved by re-rendering (most specific first).
MAX_PROBES = 40
_OWNED_PREFIXES = ("rendered/", ".github/workflows/")


@dataclass(frozen=True)
class Cause:
    """One catalog value that produced the line."""

    location: Location
    #: The value's key path in its file (``overrides.prod.database.instance_class``).
    key: str
    value: Any
    #: The settings layer, when the value is a layered setting (``tenant acme x prod``).
    layer: str | None
    #: True when changing the value changes the line; False for a match by value only.
    proved: bool

    def as_dict(self) -> dict[str, Any]:
        return {"location": str(self.location), "key": self.key, "value": self.value, "layer": self.layer, "proved": self.proved}


@dataclass(frozen=True)
class LineTrace:
    path: str
    line: int
    text: str
    target: str
    owner: dict[str, str]
    causes: list[Cause]
    template: Location | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "text": self.text,
            "target": self.target,
            "owner": self.owner,
            "template": str(self.template) if self.template else None,
            "causes": [c.as_dict() for c in self.causes],
            "notes": self.notes,
        }


def parse_spec(spec: str) -> tuple[str, int] | None:
    """``rendered/x/main.tf:42`` -> (path, 42); None when ``spec`` is not of that shape."""
    match = re.fullmatch(r"(.+):(\d+)", spec)
    if match is None:  # tenant names never contain ':'
        return None
    return match.group(1), int(match.group(2))


def trace_line(root: Path, path: str, line: int) -> LineTrace:
    """Explain line ``line`` (1-based) of the rendered file ``path`` (repository-relative)."""
    rel = _relative(root, path)
    entry = tree.read_manifest(root, own=False).get(rel)
    if entry is None:
        raise UsageError(
            f"{rel} is not a file companyos generated (no manifest in {tree.UNITS_DIR}/ lists it); explain traces generated files only"
        )
    target = _target(str(entry.get("target", "")))
    catalog = _scoped(pipeline.load(root), entry.get("tenant"))
    model = resolve(catalog)  # not judged: tracing must work while a rule fails
    env = entry.get("environment")
    fresh = _render_one(model, target, rel, env)
    if fresh is None:
        raise UsageError(f"{rel} is no longer produced by the catalog (stale): run `companyos render` to prune it")
    lines = fresh.decode("utf-8").splitlines()
    if not 1 <= line <= len(lines):
        raise UsageError(f"{rel} has {len(lines)} lines; line {line} is past the end")
    text = lines[line - 1]
    notes = []
    on_disk = root / rel
    if on_disk.is_file() and on_disk.read_bytes() != fresh:
        notes.append(f"{rel} on disk differs from a fresh render; this traces the fresh render (run `companyos render`)")
    deployment = model.deployment(str(entry["tenant"]), str(env)) if entry.get("tenant") and env else None
    causes = _causes(catalog, model, target, rel, env, line, text, [str(s) for s in entry.get("sources", [])], deployment)
    owner: dict[str, str] = {k: str(entry[k]) for k in ("tenant", "environment", "root") if k in entry}
    return LineTrace(rel, line, text, target.NAME, owner, causes, _template_line(model, entry, text), notes)


def _scoped(catalog: Catalog, tenant: Any) -> Catalog:
    """Only the file's own tenant, when it has one: a tenant's outputs depend on its file,
    tier, environments, services and the platform, never on other tenants, so each probe
    resolves one tenant instead of the whole fleet."""
    if not tenant or str(tenant) not in catalog.tenants:
        return catalog
    return replace(catalog, entries={**catalog.entries, "tenant": {str(tenant): catalog.tenants[str(tenant)]}})


def _relative(root: Path, path: str) -> str:
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            candidate = candidate.resolve().relative_to(root.resolve())
        except ValueError:
            raise UsageError(f"{path} is outside the repository {root}") from None
    rel = candidate.as_posix().removeprefix("./")
    if ".." in rel.split("/") or not rel.startswith(_OWNED_PREFIXES):
        raise UsageError(
            f"{path} is not a rendered file: give a path under rendered/ or .github/workflows/, e.g. rendered/terraform/prod/shared/main.tf:12"
        )
    if rel == MANIFEST_PATH or rel.startswith(tree.UNITS_DIR + "/"):
        raise UsageError(f"{rel} is the generator's own bookkeeping; trace the file it lists instead")
    return rel


def _target(name: str) -> Target:
    for target in TARGETS:
        if name == target.NAME:
            return target
    raise UsageError(f"the manifest names an unknown target '{name}'; run `companyos render`")


def _render_one(model: Model, target: Target, rel: str, env: Any) -> bytes | None:
    scoped = parallel.restrict(model, str(env)) if env and model.environment(str(env)) else model
    return render(scoped, [target]).files.get(rel)


def _causes(
    catalog: Catalog,
    model: Model,
    target: Target,
    rel: str,
    env: Any,
    line: int,
    text: str,
    sources: list[str],
    deployment: Deployment | None,
) -> list[Cause]:
    kinds = {kind.kind: kind for kind in LAYOUT}
    candidates: list[tuple[str, str, KeyPath, Any]] = []  # (kind, name, keypath, value)
    for kind, entries in catalog.entries.items():
        for name, item in entries.items():
            if item.path not in sources and not (kind == "tenant" and emit.TENANT_FILES in sources):
                continue
            for keypath, value in _leaves(item.doc.data):
                if _appears(value, text):
                    candidates.append((kind, name, keypath, value))
    candidates.sort(key=lambda c: -len(str(c[3])))
    layers = _layer_index(deployment)
    out: list[Cause] = []
    for kind, name, keypath, value in candidates[:MAX_PROBES]:
        item = catalog.entries[kind][name]
        proved = _changes_line(catalog, kinds[kind], kind, name, item, keypath, value, target, rel, env, line, text)
        if proved is False:
            continue
        location = item.doc.locate(keypath)
        layer = layers.get((location.path, location.line, location.col))
        out.append(Cause(location, ".".join(map(str, keypath)), value, layer, proved is True))
    out.extend(_defaults(deployment, text, {(c.location.path, c.location.line) for c in out}))
    return sorted(out, key=lambda c: (not c.proved, c.location.path, c.location.line, c.location.col))


def _leaves(data: Any, prefix: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key != "$schema":
                yield from _leaves(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _leaves(value, (*prefix, index))
    elif data is not None:
        yield prefix, data


def _appears(value: Any, text: str) -> bool:
    if isinstance(value, bool):
        return re.search(rf"\b{str(value).lower()}\b", text) is not None
    if isinstance(value, int | float):
        return re.search(rf"(?<![\w.]){re.escape(str(value))}(?![\w.])", text) is not None
    word = str(value)
    return len(word) >= 2 and word in text


def _perturbed(value: Any) -> Iterator[Any]:
    """Replacement values to try, each different from ``value`` and of the same type."""
    if isinstance(value, bool):
        yield not value
    elif isinstance(value, int):
        yield from (value + 1, value - 1, value * 2 + 1)
    elif isinstance(value, float):
        yield from (value + 1.0, value / 2)
    elif isinstance(value, str):
        digits = list(re.finditer(r"\d+", value))
        if digits:  # quantities, versions, sizes: keep the shape, bump the last number
            last = digits[-1]
            yield value[: last.start()] + str(int(last.group()) + 1) + value[last.end() :]
        yield from (value + "x", value[:-1] + ("b" if value[-1:] != "b" else "c"), "x" + value)


def _changes_line(
    catalog: Catalog,
    kind_spec: FileKind,
    kind: str,
    name: str,
    item: Entry[Any],
    keypath: KeyPath,
    value: Any,
    target: Target,
    rel: str,
    env: Any,
    line: int,
    text: str,
) -> bool | None:
    """True: changing the value changes the line; False: it does not; None: no valid change."""
    for other in _perturbed(value):
        data = copy.deepcopy(item.doc.data)
        node: Any = data
        for part in keypath[:-1]:
            node = node[part]
        node[keypath[-1]] = other
        try:
            spec = kind_spec.model.model_validate({k: v for k, v in data.items() if k != "$schema"})
        except ValueError:
            continue
        doc = SourceDoc(item.doc.path, data, item.doc.positions, item.doc.key_positions)
        entries = {**catalog.entries, kind: {**catalog.entries[kind], name: Entry(spec, doc)}}
        try:
            model = resolve(replace(catalog, entries=entries))
            fresh = _render_one(model, target, rel, env)
        except (CatalogErrors, KeyError, ValueError, TypeError):
            continue
        if fresh is None:
            return True  # the file exists because of this value
        lines = fresh.decode("utf-8").splitlines()
        return line > len(lines) or lines[line - 1] != text
    return None


def _layer_index(deployment: Deployment | None) -> dict[tuple[str, int, int], str]:
    if deployment is None:
        return {}
    out = {}
    for origins in deployment.provenance.values():
        for origin in origins:
            loc = origin.location
            out[(loc.path, loc.line, loc.col)] = origin.layer
    return out


def _defaults(deployment: Deployment | None, text: str, seen: set[tuple[str, int]]) -> Iterator[Cause]:
    """Settings in force from the built-in defaults (no catalog file to change): by value."""
    if deployment is None:
        return
    for key, origins in sorted(deployment.provenance.items()):
        last: Origin = origins[-1]
        if (
            last.layer == "built-in defaults"
            and last.value is not None
            and not isinstance(last.value, dict | list)
            and _appears(last.value, text)
            and (last.location.path, last.location.line) not in seen
        ):
            yield Cause(last.location, key, last.value, last.layer, False)


def _template_line(model: Model, entry: dict[str, Any], text: str) -> Location | None:
    """The line of the output's template that writes the same key, when one does."""
    key = re.split(r"\s*[=:]\s", text.strip() + " ", maxsplit=1)[0].strip().strip('"-').strip()
    if not key or not re.search(r"\w", key):
        return None
    pattern = re.compile(rf"(?<![\w-]){re.escape(key)}(?![\w-])")
    for source in entry.get("sources", []):
        if not str(source).startswith("templates/"):
            continue
        body = model.templates.get(str(source).removeprefix("templates/"))
        if body is None:
            continue
        for number, template_line in enumerate(body.splitlines(), start=1):
            if pattern.search(template_line):
                return Location(str(source), number, template_line.find(key) + 1)
    return None


def format_text(trace: LineTrace) -> str:
    owner = ", ".join(f"{k} {v}" for k, v in trace.owner.items())
    lines = [f"{trace.path}:{trace.line}", f"    {trace.text.strip()}", ""]
    made = f"made by target {trace.target}" + (f" ({owner})" if owner else "")
    lines.append(made + (f", template {trace.template}" if trace.template else ""))
    if not trace.causes:
        lines.append("no catalog value appears on this line: it is fixed by the template or the generator")
    for cause in trace.causes:
        how = "proved: changing it changes this line" if cause.proved else "matched by value"
        layer = f" [{cause.layer}]" if cause.layer else ""
        lines.append(f"  {cause.location}{layer}  {cause.key} = {json.dumps(cause.value)}  ({how})")
    lines.extend(f"note: {note}" for note in trace.notes)
    return "\n".join(lines) + "\n"
