"""Read the catalog from disk: every input file and template, each validated on its own.

:func:`read_catalog` finds the input files (``LAYOUT``), parses each safely (``yaml_source``),
validates it against its pydantic model (``spec``) and collects *every* error with its
``file:line:col``. Cross-file checks live in ``model.references``. Templates are read here
too, so the render that follows is a pure function of what was loaded.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import hashlib
import os
import re
import stat
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from generator.catalog import spec
from generator.catalog.file_memo import FileMemo
from generator.catalog.parse_cache import ParseCache, stamp_of
from generator.catalog.yaml_source import SourceDoc, parse_yaml
from generator.errors import CatalogError, CatalogErrors, ErrorSink, Location

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class FileKind:
    """Where one kind of input file lives and which model validates it."""

    kind: str
    pattern: str
    model: type[BaseModel]
    single: bool = False
    required: bool = True


#: The kind a catalog may be read partly (``read_catalog(tenants=)``).
TENANT_KIND = "tenant"

#: Adding an input kind is one row here (and its model in ``spec``); ``companyos schema``
#: exports a JSON Schema for every row.
LAYOUT: list[FileKind] = [
    FileKind("platform", "catalog/platform.yaml", spec.Platform, single=True),
    FileKind("tier", "catalog/tiers/*.yaml", spec.Tier),
    FileKind("service", "catalog/services/*.yaml", spec.Service),
    FileKind("environment", "environments/*.yaml", spec.Environment),
    FileKind(TENANT_KIND, "tenants/*.yaml", spec.Tenant, required=False),
    FileKind("waivers", "catalog/waivers.yaml", spec.Waivers, single=True, required=False),
    FileKind("pricing", "catalog/pricing.yaml", spec.Pricing, single=True, required=False),
    FileKind("networks", "catalog/networks.yaml", spec.Networks, single=True),
    FileKind("retired_accounts", "catalog/retired-accounts.yaml", spec.RetiredAccounts, single=True, required=False),
    FileKind("addon", "catalog/addons/*.yaml", spec.Addon, required=False),
]

#: Template folders that are not render templates (copier's tenant scaffold).
NON_RENDER_TEMPLATE_DIRS = ("tenant",)


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A validated document together with the parsed file it came from."""

    spec: T
    doc: SourceDoc

    @property
    def path(self) -> str:
        return self.doc.path

    def locate(self, *keypath: str | int, key: bool = False) -> Location:
        return self.doc.locate(keypath, key=key)


@dataclass
class Catalog:
    """Everything read from disk, validated file by file."""

    root: Path
    entries: dict[str, dict[str, Entry[Any]]] = field(default_factory=dict)
    #: kind -> file stems that failed to load; references to them are not reported again.
    broken: dict[str, set[str]] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)
    #: Tenant file stems not read: a catalog read for a few tenants (``read_catalog(tenants=)``)
    #: still knows the others exist, so naming one is not a mistake.
    unread: frozenset[str] = frozenset()
    #: The parses of this read, for the pipeline to save once the run is clean (``parse_cache``).
    parses: ParseCache | None = None
    #: Facts derived from tenant files kept between clean runs (``file_memo``); set by the
    #: pipeline, which saves it with the parses.
    memo: FileMemo | None = None
    #: Path -> sha256 of the bytes this catalog was built from, for every file read (catalog
    #: and templates): the unit digests are of these bytes (``output.units.digests``), never
    #: of a later read that an editor saving meanwhile would make of newer ones.
    read_digests: dict[str, bytes] = field(default_factory=dict, repr=False)

    def defines(self, kind: str, name: str) -> bool:
        """True when ``name`` is defined, or its file exists but failed to load (already
        reported) or was not read (a catalog read for a few tenants)."""
        return name in self.entries.get(kind, {}) or name in self.broken.get(kind, set()) or (kind == TENANT_KIND and name in self.unread)

    def of(self, kind: str) -> dict[str, Entry[Any]]:
        return self.entries.get(kind, {})

    def single(self, kind: str) -> Entry[Any] | None:
        return self.entries.get(kind, {}).get(kind)

    @property
    def platform(self) -> Entry[spec.Platform]:
        entry = self.single("platform")
        assert entry is not None, "platform.yaml is required and checked at load time"
        return entry

    @property
    def tiers(self) -> dict[str, Entry[spec.Tier]]:
        return self.of("tier")

    @property
    def services(self) -> dict[str, Entry[spec.Service]]:
        return self.of("service")

    @property
    def environments(self) -> dict[str, Entry[spec.Environment]]:
        return self.of("environment")

    @property
    def tenants(self) -> dict[str, Entry[spec.Tenant]]:
        return self.of("tenant")


def read_catalog(
    root: Path, tenants: Collection[str] | None = None, known: Collection[str] | None = None, cache: ParseCache | None = None
) -> tuple[Catalog, list[CatalogError]]:
    """Read and validate every file under ``root`` on its own, keeping going after mistakes.

    Returns what loaded (broken files are listed in ``Catalog.broken``) and every error, so
    the cross-file checks (``model.references``) can add theirs and all are reported at once.
    Raises only when there is no platform file: nothing else can be checked without it.
    ``tenants``: read these tenants' files alone (``Catalog.unread`` names the others): the
    base commit's settings of a few changed tenants, not 10,000 files parsed for them.
    ``known``: every tenant that has a file, when not all of them are on disk (default: the
    files under tenants/; a base snapshot writes only those asked for). ``cache``: reuse the
    last run's parse of a file whose bytes and stat are unchanged (``parse_cache``)."""
    sink = ErrorSink()
    catalog = Catalog(root=root, parses=cache)
    # linked_part of each folder holding catalog files, asked once per folder (at 10,000
    # tenants two lstat per tenant file asked it again for the same folder)
    folders = functools.cache(functools.partial(linked_part, root))
    for kind in LAYOUT:
        paths = _paths(root, kind)
        if tenants is not None and kind.kind == TENANT_KIND:
            wanted = set(tenants)
            catalog.unread = frozenset({_stem(rel) for rel in paths}.union(known or ()) - wanted)
            paths = [rel for rel in paths if _stem(rel) in wanted]
        catalog.entries[kind.kind] = _load_kind(
            root, kind, paths, sink, catalog.broken.setdefault(kind.kind, set()), folders, cache, catalog.read_digests
        )
    catalog.templates = _load_templates(root, sink, catalog.read_digests)
    if catalog.single("platform") is None:
        sink.raise_if_any()
    return catalog, sink.errors


def load_catalog(root: Path) -> Catalog:
    """:func:`read_catalog`, raising CatalogErrors on any mistake (no cross-file checks)."""
    catalog, errors = read_catalog(root)
    if errors:
        raise CatalogErrors(errors)
    return catalog


def _paths(root: Path, kind: FileKind) -> list[str]:
    """The files of ``kind`` (relative to ``root``), in path order; one folder listing, no
    ``pathlib`` glob (at 10,000 tenants its objects cost more than reading the files)."""
    folder, _, pattern = kind.pattern.rpartition("/")
    if not any(char in pattern for char in "*?["):
        return [kind.pattern] if os.path.exists(os.path.join(root, kind.pattern)) else []
    patterns = [pattern]
    if pattern.endswith("*.yaml"):  # a stray .yml must not be silently ignored
        patterns.append(pattern[: -len(".yaml")] + ".yml")
    try:
        with os.scandir(os.path.join(root, folder)) as found:
            names = [entry.name for entry in found if any(fnmatch.fnmatchcase(entry.name, each) for each in patterns)]
    except OSError:  # no such folder (or not one): no files of this kind
        return []
    return [f"{folder}/{name}" for name in sorted(names)]


def _stem(rel: str) -> str:
    """``PurePosixPath(rel).stem``, without the object."""
    name = rel.rpartition("/")[2]
    dot = name.rfind(".")
    return name[:dot] if 0 < dot < len(name) - 1 else name


def _load_kind(
    root: Path,
    kind: FileKind,
    paths: list[str],
    sink: ErrorSink,
    broken: set[str],
    linked: Callable[[str], str | None],
    cache: ParseCache | None,
    read: dict[str, bytes],
) -> dict[str, Entry[Any]]:
    if not paths and kind.required:
        sink.add(Location(kind.pattern), f"no {kind.kind} file found (expected {kind.pattern})")
    entries: dict[str, Entry[Any]] = {}
    top = os.path.join(root, "")
    for rel in paths:
        path, stem = top + rel, _stem(rel)
        st = _lstat(path)
        folder = rel.rpartition("/")[0]
        link = (linked(folder) if folder else None) or (rel if st is not None and stat.S_ISLNK(st.st_mode) else None)
        if link is not None or st is None or not stat.S_ISREG(st.st_mode):
            through = f" ('{link}' is a symbolic link, which may point outside the repository)" if link not in (None, rel) else ""
            sink.add(Location(rel), f"catalog files must be regular files, not links or folders{through}")
            broken.add(stem)  # reported here; references to it are not reported again
            continue
        with open(path, "rb") as file:
            raw = file.read()
        sha = read[rel] = hashlib.sha256(raw).digest()
        parsed = cache.parse(rel, raw, stamp_of(st), sha) if cache is not None else None
        entry: Entry[Any] | None = load_entry(rel, raw, kind.model, sink, parsed)  # the model varies by kind
        if entry is None:
            broken.add(stem)
            continue
        name = kind.kind if kind.single else entry.spec.name
        if not kind.single and stem != name:  # per-name files: the stem is the name
            sink.add(
                entry.locate("name"),
                f"{kind.kind} name '{name}' does not match its file name '{rel.rpartition('/')[2]}' (expected {stem!s})",
            )
            continue
        if name in entries:
            sink.add(entry.locate("name"), f"duplicate {kind.kind} '{name}' (also in {entries[name].path})")
            continue
        entries[name] = entry
    return entries


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def load_entry(
    rel: str, raw: bytes, model: type[T], sink: ErrorSink, parsed: tuple[SourceDoc | None, list[CatalogError]] | None = None
) -> Entry[T] | None:
    """Parse and validate one file's bytes; report problems to ``sink``. ``parsed``: the
    parse already made (``parse_cache``)."""
    doc, errors = parsed if parsed is not None else parse_yaml(rel, raw)
    if doc is None:
        sink.extend(errors)
        return None
    data = {k: v for k, v in doc.data.items() if k != "$schema"}
    try:
        return Entry(model.model_validate(data), doc)
    except ValidationError as exc:
        sink.extend(validation_errors(doc, model, exc, raw))
        return None


def validation_errors(doc: SourceDoc, model: type[BaseModel], exc: ValidationError, raw: bytes | None = None) -> list[CatalogError]:
    """Turn pydantic's errors into located, human messages (``raw``, the file's bytes, lets a
    hint quote a value as it was written: ``012345678901``, not the number YAML made of it)."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(part for part in err["loc"] if not isinstance(part, str) or not part.startswith("function-"))
        kind = err["type"]
        if kind == "extra_forbidden":
            where = doc.locate(loc, key=True)
            message = f"unknown key '{loc[-1]}'" + _suggestion(model, loc)
        elif kind == "missing":
            where = doc.locate(loc[:-1], key=True) if len(loc) > 1 else Location(doc.path, 1, 1)
            message = f"missing required key '{'.'.join(map(str, loc))}'"
        else:
            where = doc.locate(loc)
            message = f"{'.'.join(map(str, loc))}: {_describe(err, _written(raw, where) if where.path == doc.path else None)}"
        out.append(CatalogError(where, message))
    return out


def _written(raw: bytes | None, where: Location) -> str | None:
    """The plain scalar at ``where`` exactly as the file spells it, or None."""
    if raw is None:
        return None
    lines = raw.decode("utf-8", errors="replace").splitlines()
    if not 0 < where.line <= len(lines):
        return None
    match = re.match(r"[^\s,\[\]{}#\"']+", lines[where.line - 1][where.col - 1 :])
    return match.group(0) if match else None


def _describe(err: Any, written: str | None = None) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern")
        if pattern == spec.NAME_PATTERN:
            return (
                f"{value!r} is not a valid name: use 2-20 lowercase letters, digits and '-', starting with a letter and not ending with '-'"
            )
        return f"{value!r} does not match the pattern {pattern}"
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        # YAML reads 012345678901 as 12345678901 and 1.10 as 1.1: quote what was written.
        literal = written if written is not None and re.fullmatch(r"[-+0-9._a-zA-Z]+", written) else str(value)
        read_as = f" (read as {value})" if literal != str(value) else ""
        return f'expected a string, got the number {literal}{read_as}; quote it: "{literal}"'
    if kind in {"int_type", "bool_type", "float_type", "string_type", "list_type", "dict_type", "model_type"}:
        return f"{err['msg'].removeprefix('Input should be ')}; got {type(value).__name__} {value!r}".replace("a valid ", "expected a ")
    return str(err["msg"])


def _suggestion(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    allowed = _allowed_keys(model, loc[:-1])
    if not allowed:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    if close:
        return f"; did you mean '{close[0]}'?"
    return "; expected one of: " + ", ".join(sorted(allowed))


def _allowed_keys(model: Any, loc: tuple[Any, ...]) -> list[str]:
    """Field names accepted at ``loc`` inside ``model``."""
    found = spec.annotation_at(model, loc)
    return list(found.model_fields) if isinstance(found, type) and issubclass(found, BaseModel) else []


def linked_part(root: Path, rel: str) -> str | None:
    """The first part of ``rel`` (relative to ``root``) that is a symbolic link, or None.

    Catalog files, templates and the folders holding them are read only when no part of
    their path is a link: a link can point outside the repository, so what is rendered
    would depend on files no reviewer sees."""
    parts = Path(rel).parts
    for depth in range(1, len(parts) + 1):
        if (root.joinpath(*parts[:depth])).is_symlink():
            return "/".join(parts[:depth])
    return None


def template_links(root: Path, folder: str = "templates") -> list[str]:
    """Every symbolic link at or below ``folder`` (relative to ``root``), never followed."""
    base = root / folder
    if base.is_symlink():
        return [folder]
    found = []
    for here, dirs, files in os.walk(base):  # followlinks=False: a linked folder is listed, not entered
        for name in (*dirs, *files):
            path = Path(here) / name
            if path.is_symlink():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def _load_templates(root: Path, sink: ErrorSink, read: dict[str, bytes]) -> dict[str, str]:
    templates: dict[str, str] = {}
    base = root / "templates"
    links = template_links(root)
    for link in links:
        sink.add(Location(link), "templates must be regular files and folders, not symbolic links (they may point outside the repository)")
    if links == ["templates"]:
        return templates
    if not base.is_dir():
        sink.add(Location("templates"), "templates/ folder is missing")
        return templates
    for path in sorted(base.rglob("*.j2")):
        rel = path.relative_to(base).as_posix()
        if rel.split("/", 1)[0] in NON_RENDER_TEMPLATE_DIRS or path.is_symlink():
            continue
        if not path.is_file():
            sink.add(Location(f"templates/{rel}"), "a template must be a regular file")
            continue
        raw = path.read_bytes()
        try:
            # as text mode reads it (universal newlines), with the sha256 of the bytes it came from
            templates[rel] = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
            read[f"templates/{rel}"] = hashlib.sha256(raw).digest()
        except UnicodeDecodeError:
            sink.add(Location(f"templates/{rel}"), "template is not valid UTF-8")
    return templates
