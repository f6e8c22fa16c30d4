"""Hostile values in every string field of every catalog file never leave their string.

Each field of the sample catalog whose schema type is a string (values, user-chosen map keys,
and string fields the sample leaves out, created here) gets each hostile value below. The
catalog must either refuse it with a ``path:line:col`` error at that field, or render; then
every output must parse with a real parser (PyYAML, python-hcl2, json) to the same shape as
the clean render (same documents, keys, HCL blocks and list lengths): the value may only
change scalars. Workflows must not carry a ``${{`` GitHub would evaluate.

Fields are batched per hostile value (one render for all of them, refusals attributed by
their catalog line); a structural difference is bisected down to the field that caused it.
"""

from __future__ import annotations

import copy
import json
import re
import types
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import hcl2
import pytest
import yaml as pyyaml
from pydantic import BaseModel

from generator import pipeline
from generator.catalog.load import LAYOUT, load_entry
from generator.catalog.yaml_source import SourceDoc, parse_yaml
from generator.errors import CatalogError, CatalogErrors, ErrorSink
from generator.output.tree import UNITS_DIR
from helpers.repo import REPO, copy_repo, snapshot

#: One worker runs every attack, so the fields a first attack found refused elsewhere
#: (``_SUSPECTS``) shorten the bisections of the others.
pytestmark = pytest.mark.xdist_group("injection")

#: One value per attack: a YAML line break + key, a Unicode line separator (a line break in
#: YAML 1.1), comment starts, both quotes, a GitHub expression, an HCL block break-out,
#: Jinja syntax and backslashes.
HOSTILE = {
    "newline-key": "ubuntu-24.04\n    container: attacker.example/img",
    "u2028": "x\u2028injected: evil\u2029more: evil",
    "hash": "x # comment\n# injected: evil",
    "quotes": "it's \"quoted\": 'x'",
    "gh-expression": "x-${{ github.token }}",
    "hcl-block": 'x"\n}\nresource "aws_iam_user" "evil" {\n  name = "x',
    "jinja": "{{ 7 * 7 }}{% if true %}x{% endif %}",
    "backslash": 'x\\\\\\n\\"\\',
}
GH_MARKER = "${{ github.token"


def _load(rel: str, text: str) -> Any:
    """A catalog file's data as the generator reads it (YAML 1.2 core schema)."""
    doc, errors = parse_yaml(rel, text.encode("utf-8"))
    assert doc is not None, errors
    return doc.data


def _dump(data: Any) -> str:
    """Hostile data back to YAML with libyaml's emitter: every value quoted as YAML needs
    (fast; comments and layout of the sample do not matter here)."""
    return pyyaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=1 << 16)


_DUMPER = getattr(pyyaml, "CSafeDumper", pyyaml.SafeDumper)


@dataclass(frozen=True)
class Field:
    """One place a string lives: ``keypath`` in ``file``; ``key``: the map key at the end of
    ``keypath`` is replaced; ``create``: the sample leaves the field out (it is added);
    ``listed``: the field is a list of strings and is created as a one-item list."""

    file: str
    keypath: tuple[str | int, ...]
    key: bool = False
    create: bool = False
    listed: bool = False

    def __str__(self) -> str:
        what = ".".join(str(p) for p in self.keypath)
        return f"{self.file}:{what}{' (key)' if self.key else ''}{' (created)' if self.create else ''}"


def _unwrap(annotation: Any) -> list[Any]:
    """The alternatives of an annotation, Optional/Union and Annotated removed."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [a for arg in get_args(annotation) if arg is not type(None) for a in _unwrap(arg)]
    if hasattr(annotation, "__metadata__"):
        return _unwrap(get_args(annotation)[0])
    return [annotation]


def _is_str(annotation: Any) -> bool:
    for alt in _unwrap(annotation):
        if alt is str:
            return True
        if get_origin(alt) is Literal and any(isinstance(a, str) for a in get_args(alt)):
            return True
    return False


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for alt in _unwrap(annotation):
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            return alt
    return None


def _dict_value(annotation: Any) -> Any | None:
    for alt in _unwrap(annotation):
        if get_origin(alt) is dict:
            return get_args(alt)[1]
    return None


def _list_item(annotation: Any) -> Any | None:
    for alt in _unwrap(annotation):
        if get_origin(alt) is list:
            return get_args(alt)[0]
    return None


def _walk(rel: str, data: Any, annotation: Any, path: tuple[str | int, ...]) -> Iterator[Field]:
    model = _model_of(annotation)
    if isinstance(data, dict) and model is not None:
        for name, info in model.model_fields.items():
            if name in data:
                yield from _walk(rel, data[name], info.annotation, (*path, name))
            elif _is_str(info.annotation):
                yield Field(rel, (*path, name), create=True)
            elif (item := _list_item(info.annotation)) is not None and _is_str(item):
                yield Field(rel, (*path, name), create=True, listed=True)
        return
    if isinstance(data, dict):
        value_type = _dict_value(annotation)
        for key, item in data.items():
            if isinstance(key, str):
                yield Field(rel, (*path, key), key=True)
            yield from _walk(rel, item, value_type, (*path, key))
        return
    if isinstance(data, list):
        item_type = _list_item(annotation)
        for i, item in enumerate(data):
            yield from _walk(rel, item, item_type, (*path, i))
        return
    if isinstance(data, str):
        yield Field(rel, path)


def catalog_files(root: Path) -> list[tuple[str, type[BaseModel]]]:
    out = []
    for kind in LAYOUT:
        for path in sorted(root.glob(kind.pattern)):
            out.append((path.relative_to(root).as_posix(), kind.model))
    return out


def string_fields(root: Path) -> list[Field]:
    """Every string field of every catalog file under ``root``, by its schema."""
    fields: list[Field] = []
    for rel, model in catalog_files(root):
        data = _load(rel, (root / rel).read_text(encoding="utf-8"))
        fields.extend(_walk(rel, data, model, ()))
    return fields


def hostile_for(f: Field, value: str) -> str:
    """``value`` made unique to ``f`` (a suffix), so sibling keys never collide and a
    renamed key in an output can be traced back to its field."""
    return f"{value}~{zlib.crc32(str(f).encode()):08x}"


def _set(data: Any, f: Field, value: str) -> None:
    parent = data
    for part in f.keypath[:-1]:
        parent = parent[part]
    last = f.keypath[-1]
    if f.key:
        items = [(value if k == last else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)
    elif f.listed:
        parent[last] = [value]
    else:
        parent[last] = value


def _positions(doc: Any, f: Field, value: str) -> list[tuple[int, int]]:
    """Where the field's value landed; for a map key, the key and the value under it (an
    error about a key may point at either)."""
    if f.key:
        keypath = (*f.keypath[:-1], value)
        found = [doc.key_positions.get(keypath), doc.positions.get(keypath)]
    else:
        found = [doc.positions.get((*f.keypath, 0) if f.listed else f.keypath)]
    return [p for p in found if p is not None]


@dataclass
class Attempt:
    build: pipeline.Build | None
    errors: list[CatalogError]
    #: (path, line, col) of each hostile field in the files as written.
    where: dict[Field, list[tuple[str, int, int]]] = field(default_factory=dict)
    #: The parsed edited files (positions of every key and value).
    docs: dict[str, SourceDoc] = field(default_factory=dict)


class Workbench:
    """A scratch repository whose catalog files are reset and re-edited for every attempt."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.models = dict(catalog_files(root))
        self.pristine = {rel: (root / rel).read_text(encoding="utf-8") for rel in self.models}
        self.data = {rel: _load(rel, text) for rel, text in self.pristine.items()}
        self.builds = 0

    def edited(self, rel: str, group: list[Field], value: str) -> tuple[bytes, dict[Field, list[tuple[str, int, int]]], SourceDoc | None]:
        """``rel`` with ``group`` set to ``value``, and where each field landed."""
        data = copy.deepcopy(self.data[rel])
        # Keys last, deepest first: replacing a key must not move a path still to be edited.
        for f in sorted(group, key=lambda f: (f.key, -len(f.keypath))):
            _set(data, f, hostile_for(f, value))
        raw = _dump(data).encode("utf-8")
        doc, _ = parse_yaml(rel, raw)
        renamed = {f.keypath: hostile_for(f, value) for f in group if f.key}

        def actual(keypath: tuple[str | int, ...]) -> tuple[str | int, ...]:
            """``keypath`` in the edited file, through the keys renamed above it."""
            return tuple(renamed.get(keypath[: n + 1], part) if n < len(keypath) - 1 else part for n, part in enumerate(keypath))

        where: dict[Field, list[tuple[str, int, int]]] = {}
        for f in group:
            moved = Field(f.file, actual(f.keypath), f.key, f.create, f.listed)
            if doc is not None:
                where[f] = [(rel, *pos) for pos in _positions(doc, moved, hostile_for(f, value))]
        return raw, where, doc

    def validate(self, rel: str, group: list[Field], value: str) -> Attempt:
        """Parse and schema-check one edited file in memory (no render): the cheap first pass."""
        raw, where, doc = self.edited(rel, group, value)
        sink = ErrorSink()
        load_entry(rel, raw, self.models[rel], sink)
        return Attempt(None, sink.errors, where, {rel: doc} if doc is not None else {})

    def attempt(self, fields: list[Field], value: str) -> Attempt:
        by_file: dict[str, list[Field]] = {}
        for f in fields:
            by_file.setdefault(f.file, []).append(f)
        where: dict[Field, list[tuple[str, int, int]]] = {}
        docs: dict[str, SourceDoc] = {}
        for rel, text in self.pristine.items():
            if rel in by_file:
                raw, placed, doc = self.edited(rel, by_file[rel], value)
                (self.root / rel).write_bytes(raw)
                where.update(placed)
                if doc is not None:
                    docs[rel] = doc
            else:
                (self.root / rel).write_text(text, encoding="utf-8")
        self.builds += 1
        try:
            return Attempt(pipeline.build(self.root, jobs=1), [], where, docs)
        except CatalogErrors as exc:
            return Attempt(None, list(exc.errors), where, docs)


_LOCATED = re.compile(r"(^|\) )[^\s:]+:\d+:\d+: ")
_MENTIONED = re.compile(r"([A-Za-z0-9_./-]+\.yaml):(\d+):(\d+)")


def _attribute(attempt: Attempt, fields: list[Field]) -> tuple[dict[Field, str], list[Field]]:
    """The fields errors point at: the error's location or one its message names, at the
    field (same line and column, else same line) or at an ancestor of it (a guardrail's key,
    a mapping). An ancestor shared by several fields of the batch is ambiguous: those fields
    are returned apart, to be tried one by one."""
    hit: dict[Field, str] = {}
    ambiguous: list[Field] = []
    for error in attempt.errors:
        loc = error.location
        places = [(loc.path, loc.line, loc.col)]
        places += [(m[1], int(m[2]), int(m[3])) for m in _MENTIONED.finditer(error.message)]
        found = False
        for place in places:
            exact = [f for f in fields if place in attempt.where.get(f, [])]
            same_line = [f for f in fields if any(w[:2] == place[:2] for w in attempt.where.get(f, []))]
            for f in exact or same_line:
                hit.setdefault(f, str(error))
                found = True
        if found:
            continue
        for path, line, col in places:
            doc = attempt.docs.get(path)
            if doc is None:
                continue
            under = [
                f
                for f in fields
                if f.file == path
                and any(
                    table.get(f.keypath[:n]) in ((line, col),)
                    for n in range(len(f.keypath))
                    for table in (doc.positions, doc.key_positions)
                )
            ]
            if len(under) == 1:
                hit.setdefault(under[0], str(error))
            else:
                ambiguous.extend(f for f in under if f not in ambiguous)
    return hit, [f for f in ambiguous if f not in hit]


#: Fields an earlier attack saw refused by an error located elsewhere (a cross-file contract
#: naming its consumer). Such an error names no field, so finding its field takes a bisection
#: of whole renders; trying these first makes that a bisection of a handful. Only the order of
#: the search changes: every field is still judged by a render of its own value.
_SUSPECTS: set[Field] = set()


def _split(run: Callable[[list[Field]], Attempt], fields: list[Field]) -> tuple[dict[Field, str], list[Field], Attempt]:
    """Split ``fields`` into refused ones (with the error that names them) and the rest,
    which ``run`` accepts together; errors that name no field are bisected."""
    refused: dict[Field, str] = {}
    live = list(fields)
    alone: list[Field] = []  # fields an error could not tell apart: tried one by one
    while True:
        # nothing left to try together: the clean catalog renders (the ``clean`` fixture)
        attempt = run(live) if live else Attempt(None, [])
        if not attempt.errors:
            for f in alone:
                refused.update(_split(run, [f])[0])
            accepted = [f for f in alone if f not in refused]
            if accepted:  # they render alone; now with the rest
                more, rest, attempt = _split(run, live + accepted)
                refused.update(more)
                return refused, rest, attempt
            return refused, live, attempt
        hit, ambiguous = _attribute(attempt, live)
        if hit or ambiguous:
            refused.update(hit)
            alone += [f for f in ambiguous if f not in alone]
            live = [f for f in live if f not in hit and f not in alone]
            continue
        if len(live) <= 1:
            assert live, f"the clean catalog is refused: {attempt.errors[:3]}"
            own = [e for e in attempt.errors if e.location.path == live[0].file]
            refused[live[0]] = f"(not at the field) {(own or attempt.errors)[0]}"
            _SUSPECTS.add(live[0])
            return refused, [], attempt
        suspects = [f for f in live if f in _SUSPECTS]
        if 0 < len(suspects) < len(live):
            parts = (suspects, [f for f in live if f not in _SUSPECTS])
        else:
            half = len(live) // 2
            parts = (live[:half], live[half:])
        for part in parts:
            refused.update(_split(run, part)[0])
        live = [f for f in live if f not in refused]


def settle(bench: Workbench, fields: list[Field], value: str) -> tuple[dict[Field, str], list[Field], pipeline.Build | None]:
    """Refused fields (schema pass per file in memory, then whole renders) and the fields
    that render together, with that render."""
    refused: dict[Field, str] = {}
    survivors: list[Field] = []
    by_file: dict[str, list[Field]] = {}
    for f in fields:
        by_file.setdefault(f.file, []).append(f)
    for rel, group in by_file.items():
        file_refused, live, _ = _split(lambda part, rel=rel: bench.validate(rel, part, value), group)
        refused.update(file_refused)
        survivors.extend(live)
    late_refused, live, attempt = _split(lambda part: bench.attempt(part, value), survivors)
    refused.update(late_refused)
    if attempt.build is None and live:  # the last attempt was of a subset: render the survivors
        attempt = bench.attempt(live, value)
        assert attempt.build is not None, attempt.errors[:3]
    return refused, live, attempt.build


# --- comparing outputs -------------------------------------------------------------------------


def parse_output(path: str, data: bytes) -> Any:
    text = data.decode("utf-8")
    if path.endswith((".yml", ".yaml")):
        return list(pyyaml.safe_load_all(text))
    if path.endswith(".tf"):
        return hcl2.loads(text)
    if path.endswith(".json"):
        return json.loads(text)
    raise AssertionError(f"{path}: no parser for this kind of output")


def shape(value: Any, renamed: dict[str, str] | None = None) -> Any:
    """The structure of parsed output with every scalar replaced by one placeholder; keys in
    ``renamed`` (a hostile map key of a free-form catalog map -> the key it replaced) are
    read as the key they replaced: data keys may be renamed, nothing else may change."""
    if isinstance(value, dict):
        names = renamed or {}
        return {names.get(str(k), str(k)): shape(v, renamed) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v, renamed) for v in value]
    return "*"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _bytes_of(build: pipeline.Build) -> dict[str, bytes]:
    out = {}
    for path, item in build.result.files.items():
        out[path] = bytes(item)
    return out


class Clean:
    """The clean render and (lazily, hcl2 is slow) the shapes of its files."""

    def __init__(self, build: pipeline.Build) -> None:
        self.files = _bytes_of(build)
        self._shapes: dict[str, Any] = {}

    def shape(self, path: str) -> Any:
        if path not in self._shapes:
            self._shapes[path] = shape_of(path, parse_output(path, self.files[path]))
        return self._shapes[path]


def shape_of(path: str, parsed: Any, renamed: dict[str, str] | None = None) -> Any:
    """:func:`shape` of a parsed output; a unit manifest's ``places`` table (the catalog
    positions its contracts point at) is data: a value that moves lines may add or merge one."""
    if path.startswith(UNITS_DIR + "/") and isinstance(parsed, dict) and isinstance(parsed.get("places"), list):
        parsed = {**parsed, "places": "*"}
    return shape(parsed, renamed)


def structural_problems(clean: Clean, build: pipeline.Build, renamed: dict[str, str]) -> list[str]:
    files = _bytes_of(build)
    problems = []
    if set(files) != set(clean.files):
        problems.append(f"file set changed: +{sorted(set(files) - set(clean.files))} -{sorted(set(clean.files) - set(files))}")
    for path in sorted(set(files) & set(clean.files)):
        if files[path] == clean.files[path]:
            continue
        try:
            parsed = parse_output(path, files[path])
        except Exception as exc:  # any parser's error is the finding
            problems.append(f"{path}: does not parse: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if shape_of(path, parsed, renamed) != clean.shape(path):
            problems.append(f"{path}: structure differs from the clean render")
        if path.startswith(".github/workflows/") and any(GH_MARKER in s for s in _strings(parsed)):
            problems.append(f"{path}: a catalog value carries a GitHub expression into the workflow")
    return problems


def renames(fields: list[Field], value: str) -> dict[str, str]:
    return {hostile_for(f, value): str(f.keypath[-1]) for f in fields if f.key}


def culprits(bench: Workbench, clean: Clean, fields: list[Field], value: str) -> list[tuple[Field, list[str]]]:
    """The fields whose hostile value changes an output's structure (bisection)."""
    attempt = bench.attempt(fields, value)
    assert attempt.build is not None, f"a subset of rendering fields stopped rendering: {attempt.errors[:3]}"
    problems = structural_problems(clean, attempt.build, renames(fields, value))
    if not problems:
        return []
    if len(fields) == 1:
        return [(fields[0], problems)]
    half = len(fields) // 2
    return culprits(bench, clean, fields[:half], value) + culprits(bench, clean, fields[half:], value)


@dataclass
class Outcome:
    refused: dict[Field, str]
    rendered: list[Field]
    findings: list[tuple[Field, list[str]]]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Workbench:
    return Workbench(copy_repo(tmp_path_factory.mktemp("hostile") / "repo"))


@pytest.fixture(scope="module")
def fields(bench: Workbench) -> list[Field]:
    return [f for f in string_fields(bench.root) if not _coupled_addon_key(bench.root, f)]


def _coupled_addon_key(root: Path, field: Field) -> bool:
    """A key of an add-on's ``values`` that its ``environment_values`` also names, or the other
    way round: renaming one side alone legitimately changes the merged structure (the other
    side still names the old key)."""
    if not (field.key and field.file.startswith("catalog/addons/")):
        return False
    data = pyyaml.safe_load((root / field.file).read_text(encoding="utf-8")) or {}
    if field.keypath[:1] == ("values",):
        path, others = field.keypath[1:], list((data.get("environment_values") or {}).values())
    elif field.keypath[:1] == ("environment_values",) and len(field.keypath) > 2:
        path, others = field.keypath[2:], [data.get("values") or {}]
    else:
        return False
    for other in others:
        node: Any = other
        for part in path:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return True
    return False


@pytest.fixture(scope="module")
def clean(bench: Workbench) -> Clean:
    attempt = bench.attempt([], "")
    assert attempt.build is not None
    return Clean(attempt.build)


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    return {}


def test_every_string_field_is_enumerated(fields: list[Field]) -> None:
    """The enumeration follows the schemas: values, map keys and absent string fields of
    every kind of catalog file (a broken walk would make the hostile test vacuous)."""
    files = {f.file for f in fields}
    # The sample's waivers list is empty (a waiver needs a violation to cover); waivers only
    # feed the policy report, never a rendered file.
    assert {rel for rel, _ in catalog_files(REPO)} - {"catalog/waivers.yaml"} <= files
    assert any(f.keypath == ("ci", "runner") for f in fields)
    assert any(f.keypath[:3] == ("ci", "actions", "actions/checkout") and f.keypath[-1] == "tag" for f in fields)
    assert any(f.keypath[:2] == ("promotion", "reviewers") for f in fields)
    assert any(f.key for f in fields) and any(f.create for f in fields)
    assert any(f.keypath[-1] == "description" for f in fields)
    assert len(fields) > 300, len(fields)


@pytest.mark.parametrize("attack", sorted(HOSTILE))
def test_hostile_values_are_refused_or_stay_values(
    attack: str, bench: Workbench, fields: list[Field], clean: Clean, outcomes: dict[str, Outcome]
) -> None:
    value = HOSTILE[attack]
    refused, live, build = settle(bench, fields, value)
    assert build is not None or not live
    findings: list[tuple[Field, list[str]]] = []
    if build is not None and structural_problems(clean, build, renames(live, value)):
        findings = culprits(bench, clean, live, value)
    outcomes[attack] = Outcome(refused, live, findings)
    assert not findings, "\n".join(f"{f}: {'; '.join(p)}" for f, p in findings)
    # Every refusal is a located error. One that points elsewhere (a cross-file contract
    # naming its consumer) is still a refusal; the summary lists them for review.
    unlocated = [f"{f}: {m}" for f, m in refused.items() if not _LOCATED.search(m)]
    assert not unlocated, "refused without a path:line:col error:\n" + "\n".join(unlocated)
    assert len(refused) + len(live) == len(fields)


def test_issue_examples_are_refused_at_their_line(bench: Workbench, fields: list[Field]) -> None:
    """The three fields of the report, with the report's value, are refused at their line."""
    chosen = [
        f
        for f in fields
        if f.keypath == ("ci", "runner")
        or (f.keypath[:2] == ("ci", "actions") and f.keypath[-1] == "tag")
        or (f.keypath[:2] == ("promotion", "reviewers") and not f.key)
    ]
    value = HOSTILE["newline-key"]
    attempt = bench.attempt(chosen, value)
    assert attempt.build is None
    assert set(_attribute(attempt, chosen)[0]) == set(chosen)


def test_refusal_through_the_cli_writes_nothing(companyos: Callable[..., Any], repo: Path, fields: list[Field]) -> None:
    """End to end: `companyos render` with hostile values everywhere exits 2 with
    path:line:col errors, no traceback, and leaves every file as it was."""
    bench = Workbench(repo)
    bench.attempt(fields, HOSTILE["newline-key"])
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert any(line.startswith(("catalog/platform.yaml:", "environments/", "tenants/")) for line in result.err.splitlines()), result.err
    assert snapshot(repo) == before


def test_every_field_was_judged(outcomes: dict[str, Outcome], fields: list[Field]) -> None:
    """Runs after the hostile tests: each attack judged every field (refused or rendered)."""
    if len(outcomes) < len(HOSTILE):
        pytest.skip("run with the whole module")
    for attack, outcome in outcomes.items():
        assert len(outcome.refused) + len(outcome.rendered) == len(fields), attack
    print(
        f"\n{len(fields)} string fields x {len(HOSTILE)} attacks: "
        + ", ".join(f"{a}: {len(o.refused)} refused/{len(o.rendered)} rendered" for a, o in sorted(outcomes.items()))
    )
    elsewhere = sorted({str(f) for o in outcomes.values() for f, m in o.refused.items() if m.startswith("(not at the field)")})
    if elsewhere:
        print("refused by an error located elsewhere (not at the field):\n  " + "\n  ".join(elsewhere))
