"""``companyos lint``: lint a fresh render with checkov and the structural validators.

The render is written to a temporary folder (never the working tree); then checkov, yamllint,
check-jsonschema (workflows) and kubernetes-validate plus the vendored CRD schemas
(``generator.vendor``) run over it, with the exceptions listed in ``catalog/lint.yaml``. A
manifest whose kind has no schema is an error; an absent output kind is "no files". Tools,
flags and exceptions: docs/guardrails.md ("Lint of rendered output").
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import os
import posixpath
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, StringConstraints

from generator import vendor
from generator.catalog import spec
from generator.catalog.load import load_entry
from generator.errors import ErrorSink, UsageError
from generator.ops import isolation, lint_scope, parse_memo
from generator.output import units
from generator.output.tree import UNITS_DIR
from generator.pipeline import Build

CONFIG_PATH = "catalog/lint.yaml"
CHECKOV_FRAMEWORKS = ("terraform", "kubernetes", "github_actions")
KUBERNETES_VERSION = "1.33"


class CheckovSkip(spec.Strict):
    id: Annotated[str, StringConstraints(pattern=r"^CKV2?_[A-Z0-9]+_[0-9]+$")]
    reason: str = Field(min_length=10, description="Why the check does not apply or is handled elsewhere.")
    paths: list[str] = Field(default_factory=list, description="Only files under these rendered paths (default: everywhere).")


class CheckovConfig(spec.Strict):
    skip: list[CheckovSkip] = Field(default_factory=list)


class UnvalidatedKind(spec.Strict):
    """A Kubernetes kind with no schema offline (not core, not vendored): accepted unvalidated."""

    api_version: str
    kind: str
    reason: str = Field(min_length=10)


class LintConfig(spec.Strict):
    """``catalog/lint.yaml``."""

    checkov: CheckovConfig = Field(default_factory=CheckovConfig)
    unvalidated_kinds: list[UnvalidatedKind] = Field(default_factory=list)
    yamllint: dict[str, Any] = Field(default_factory=dict, description="A yamllint configuration (the `rules:` etc.).")


@dataclass
class ToolResult:
    name: str
    files: int = 0
    errors: list[str] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "files": self.files, "errors": self.errors, "note": self.note}


@dataclass
class LintReport:
    tools: list[ToolResult] = field(default_factory=list)
    #: Framework -> {passed, failed, skipped, parsing_errors}.
    checkov: dict[str, dict[str, int]] = field(default_factory=dict)
    checkov_version: str = ""
    #: What was linted when not the whole render (``lint --base``).
    scope: str = ""

    @property
    def ok(self) -> bool:
        return not any(t.errors for t in self.tools)

    def as_dict(self) -> dict[str, Any]:
        out = {"ok": self.ok, "tools": [t.as_dict() for t in self.tools], "checkov": self.checkov, "checkov_version": self.checkov_version}
        return {**out, "scope": self.scope} if self.scope else out


def load_config(root: Path) -> LintConfig:
    path = root / CONFIG_PATH
    if not path.is_file():
        return LintConfig()
    sink = ErrorSink()
    entry = load_entry(CONFIG_PATH, path.read_bytes(), LintConfig, sink)
    sink.raise_if_any()
    assert entry is not None
    return entry.spec


def _write(build: Build, dest: Path) -> list[str]:
    written = []
    for rel, data in build.result.files.items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(rel)
    return written


def run(build: Build, *, use_checkov: bool = True, use_isolation: bool = True, crd_dir: Path | None = None) -> LintReport:
    """Lint ``build``'s render (see the module docstring); ``crd_dir`` replaces the vendored CRD
    schemas. Without ``use_isolation`` the isolation analyzer is left to its own run (the
    render-check workflow gives it one job per environment: at scale it is the slowest tool)."""
    config = load_config(build.root)
    # a missing checkov is a usage error before any work, not after a minute of validators
    binary = checkov_binary(build.root) if use_checkov else None
    with tempfile.TemporaryDirectory(prefix="companyos-lint-") as tmp:
        folder = Path(tmp)
        files = _write(build, folder)
        owners = {path: units.unit_of(entry) for path, entry in build.result.manifest["files"].items()}
        return _lint(folder, files, config, binary, crd_dir, owners, (lambda: _isolation(folder, build)) if use_isolation else None)


def run_since(
    root: Path, base: str | None, *, use_checkov: bool = True, crd_dir: Path | None = None, batch: lint_scope.Batch | None = None
) -> LintReport:
    """Lint what HEAD's commit changed in the output since commit ``base`` (``lint --base``),
    read from git's objects: the files it adds or changes, and for checkov every ``.tf`` file
    of a Terraform root one of them is in. Every other output file is the base's, which this
    lint passed when the base was merged. When lint itself differs from the base's (its
    configuration, the generator and its vendored schemas, the pinned tool versions), or
    ``base`` is None (``lint --committed``), every output file of HEAD is linted. ``batch``:
    one part of the units in play (``lint_scope.Batch``). The isolation analyzer is not run
    (its own jobs)."""
    config = load_config(root)
    binary = checkov_binary(root) if use_checkov else None
    scope = lint_scope.since(root, base, batch)
    with tempfile.TemporaryDirectory(prefix="companyos-lint-") as tmp:
        folder = Path(tmp)
        files = scope.write(root, folder)
        report = _lint(folder, [f for f in files if f in scope.changed], config, binary, crd_dir, scope.owners)
    report.scope = scope.describe()
    return report


def _lint(
    folder: Path,
    files: list[str],
    config: LintConfig,
    binary: str | None,
    crd_dir: Path | None,
    owners: Mapping[str, str],
    isolation: Callable[[], ToolResult] | None = None,
) -> LintReport:
    """The structural validators over ``files`` (paths below ``folder``), then ``isolation``
    when given, while checkov judges the whole folder in processes of its own (reported last)."""
    report = LintReport()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as side:
        checking = side.submit(_checkov, folder, binary, config, report, owners) if binary is not None else None
        yaml_files = [f for f in files if f.endswith((".yaml", ".yml"))]
        report.tools.append(_yamllint(folder, yaml_files, config))
        workflows = [f for f in yaml_files if f.startswith(".github/workflows/")]
        report.tools.append(_workflow_schema(folder, workflows))
        unvalidated = {(k.api_version, k.kind) for k in config.unvalidated_kinds}
        report.tools.append(_kubernetes(folder, yaml_files, crd_dir or vendor.crd_schema_dir(), unvalidated))
        if isolation is not None:
            report.tools.append(isolation())
        if checking is not None:
            report.tools.append(checking.result())
    return report


def _isolation(folder: Path, build: Build) -> ToolResult:
    """The isolation analyzer (``companyos isolation``) over the same fresh render: a path from
    one tenant to another fails lint as it fails the render-check workflow (docs/isolation.md)."""
    findings = isolation.analyze(folder, build.model.platform.organization, cache=parse_memo.memo_folder(build.root))
    files = sum(1 for p in (folder / "rendered").rglob("*") if p.is_file()) if (folder / "rendered").is_dir() else 0
    return ToolResult("isolation", files, [str(f) for f in findings])


# --- yamllint --------------------------------------------------------------------------


def _yamllint(folder: Path, files: list[str], config: LintConfig) -> ToolResult:
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    result = ToolResult("yamllint", len(files))
    conf = YamlLintConfig(yaml.safe_dump(config.yamllint or {"extends": "default"}))
    for rel in files:
        text = (folder / rel).read_text(encoding="utf-8")
        for problem in linter.run(text, conf, rel):
            if problem.level == "error":
                result.errors.append(f"{rel}:{problem.line}:{problem.column}: {problem.desc} ({problem.rule})")
    return result


# --- workflows -------------------------------------------------------------------------


def _workflow_schema(folder: Path, files: list[str]) -> ToolResult:
    result = ToolResult("check-jsonschema (github-workflows)", len(files))
    if not files:
        result.note = "no generated workflows"
        return result
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", "-o", "json", *files],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        try:
            data = json.loads(proc.stdout)
            for err in data.get("errors", []) + data.get("parse_errors", []):
                result.errors.append(f"{err.get('filename')}: {err.get('path', '')}: {err.get('message')}")
        except ValueError:
            pass
        if not result.errors:
            result.errors.append((proc.stdout + proc.stderr).strip()[:2000] or f"check-jsonschema exited {proc.returncode}")
    return result


# --- Kubernetes manifests --------------------------------------------------------------


def _is_custom(group: str) -> bool:
    """A CRD's API group (``argoproj.io``), not a core one (``apps``, ``networking.k8s.io``)."""
    return "." in group and not group.endswith(".k8s.io")


#: libyaml's reader where PyYAML has it (the same documents; the pure-Python one was a quarter
#: of the validators' time at 10,000 tenants).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@contextlib.contextmanager
def _schemas_read_once() -> Iterator[None]:
    """kubernetes-validate reads and parses its schema file and its ~1 MB ``_definitions.json``
    again for every document it validates (``utils.schema_contents``): 45% of a lint batch's
    validators at 10,000 tenants. Within one lint each file is parsed once; the schemas are
    only read (jsonschema and referencing never change them)."""
    from kubernetes_validate import utils

    uncached = utils.schema_contents
    utils.schema_contents = functools.lru_cache(maxsize=None)(uncached)
    try:
        yield
    finally:
        utils.schema_contents = uncached


def _kubernetes(folder: Path, files: list[str], crd_dir: Path, unvalidated: set[tuple[str, str]]) -> ToolResult:
    with _schemas_read_once():
        return _kubernetes_validated(folder, files, crd_dir, unvalidated)


def _kubernetes_validated(folder: Path, files: list[str], crd_dir: Path, unvalidated: set[tuple[str, str]]) -> ToolResult:
    import jsonschema
    import kubernetes_validate
    from kubernetes_validate import utils

    result = ToolResult("kubernetes-validate + CRD schemas")
    validators: dict[Path, Any] = {}
    manifests = 0
    accepted: dict[str, int] = {}
    for rel in files:
        if rel.startswith(".github/"):
            continue
        try:
            docs = [d for d in yaml.load_all((folder / rel).read_text(encoding="utf-8"), Loader=_YAML_LOADER) if d is not None]
        except yaml.YAMLError as exc:
            result.errors.append(f"{rel}: not YAML: {exc}")
            continue
        kube_docs = [d for d in docs if isinstance(d, dict) and "apiVersion" in d and "kind" in d]
        if not kube_docs:
            continue  # Helm values and other plain data files
        manifests += 1
        for i, doc in enumerate(kube_docs):
            api, kind = str(doc["apiVersion"]), str(doc["kind"])
            where = f"{rel}[{i}] {kind}/{(doc.get('metadata') or {}).get('name')}"
            if (api, kind) in unvalidated:
                accepted[f"{api} {kind}"] = accepted.get(f"{api} {kind}", 0) + 1
                continue
            group, _, version = api.rpartition("/")
            schema_path = crd_dir / f"{group}_{version}_{kind}.json"
            if schema_path.is_file() or _is_custom(group):
                # Every custom resource is validated against its vendored CRD schema; a
                # custom kind with no schema is an error, never a silent skip.
                if not schema_path.is_file():
                    result.errors.append(f"{where}: no schema for {api} {kind} in {crd_dir}")
                    continue
                if schema_path not in validators:
                    schema = json.loads(schema_path.read_text(encoding="utf-8"))
                    validators[schema_path] = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
                for err in sorted(validators[schema_path].iter_errors(doc), key=lambda e: list(e.absolute_path)):
                    result.errors.append(f"{where}: {'.'.join(map(str, err.absolute_path)) or '<root>'}: {err.message}")
                continue
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except utils.SchemaNotFoundError:
                result.errors.append(f"{where}: no schema for {api} {kind} (Kubernetes {KUBERNETES_VERSION})")
            except utils.ValidationError as exc:
                result.errors.append(f"{where}: {'.'.join(map(str, exc.path)) or '<root>'}: {exc.message}")
    result.files = manifests
    if not manifests:
        result.note = "no Kubernetes manifests rendered"
    elif accepted:
        result.note = "not validated (catalog/lint.yaml unvalidated_kinds): " + ", ".join(f"{k} x{n}" for k, n in sorted(accepted.items()))
    return result


# --- checkov ---------------------------------------------------------------------------


def checkov_binary(root: Path) -> str:
    """``$CHECKOV``, else ``.venv-tools/bin/checkov`` under ``root``, else ``checkov`` on PATH."""
    for candidate in (os.environ.get("CHECKOV"), str(root / ".venv-tools" / "bin" / "checkov"), shutil.which("checkov")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise UsageError("checkov not found: set CHECKOV, run `make install-test` (creates .venv-tools/bin/checkov), or pass --no-checkov")


#: Units per checkov run of the Kubernetes framework. Its graph checks relate resources
#: pairwise: at 10,000 tenants runs over 5, 10, 20 and 40 tenants' manifests took 3.8, 6.1,
#: 10.6 and 30.6 s (least per tenant at 20: each run also starts checkov, ~3 s), and one over
#: 200 had not finished after 12 minutes (4.3 GB). A tenant's manifests never refer to
#: another's (a namespace of its own), and ``lint --base`` already judged the changed files
#: alone, so runs of a few units judge each resource as one run does.
K8S_UNITS_PER_RUN = 20
#: Terraform roots per checkov run: the framework is linear (20 tenants' roots 17.4 s, 40:
#: 31.8 s) and judges each root alone (registry modules are not fetched), so runs of a
#: hundred roots keep both cores busy and the memory of each run small.
TF_ROOTS_PER_RUN = 100
#: Files per checkov run of those no unit owns (command lines stay far under the limit).
K8S_FILES_PER_RUN = 500
#: What the Kubernetes framework reads (it keeps the documents with ``apiVersion`` and ``kind``).
K8S_SUFFIXES = (".yaml", ".yml", ".json")


def _checkov(folder: Path, binary: str, config: LintConfig, report: LintReport, owners: Mapping[str, str]) -> ToolResult:
    """checkov over ``folder``: workflows in one run, Terraform in runs of whole roots,
    Kubernetes manifests in runs of :data:`K8S_UNITS_PER_RUN` units (``owners``: path ->
    unit), as many at once as there are cores; their counts add up (each file is in one run)."""
    result = ToolResult("checkov")
    global_skips = sorted({s.id for s in config.checkov.skip if not s.paths})
    scoped = [s for s in config.checkov.skip if s.paths]
    common = ["-o", "json", "--quiet", "--compact", "--skip-download", "--download-external-modules", "false", "--no-fail-on-crash"]
    if global_skips:
        common += ["--skip-check", ",".join(global_skips)]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "ERROR"}

    def run(job: tuple[list[str], Path]) -> subprocess.CompletedProcess[str]:
        args, cwd = job
        return subprocess.run(args, capture_output=True, text=True, check=False, env=env, cwd=cwd)

    with tempfile.TemporaryDirectory(prefix="companyos-checkov-") as tmp:
        # Terraform with -f names a file from the files' common folder, not from the cwd (the
        # skips' paths would not match): each run judges a folder of links to its roots' files
        runs = [([binary, "-d", str(folder), "--framework", "github_actions", *common], folder)]
        for n, group in enumerate(_terraform_groups(folder)):
            linked = _linked(folder, group, Path(tmp) / str(n))
            runs.append(([binary, "-d", str(linked), "--framework", "terraform", *common], linked))
        for group in _kubernetes_groups(folder, owners):
            runs.append(([binary, *(arg for rel in group for arg in ("-f", rel)), "--framework", "kubernetes", *common], folder))
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            done = list(pool.map(run, runs))
    report.checkov_version = _checkov_version(binary)
    for proc in done:
        try:
            data = json.loads(proc.stdout) if proc.stdout.strip() else []
        except ValueError:
            result.errors.append(f"checkov output is not JSON (exit {proc.returncode}): {(proc.stdout + proc.stderr).strip()[:2000]}")
            continue
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and "check_type" in item:  # else the "no files found" summary
                _count_checkov(item, scoped, report, result)
    if not report.checkov:
        result.note = "no Terraform, Kubernetes or workflow files rendered"
    return result


def _linked(folder: Path, files: list[str], dest: Path) -> Path:
    """``dest`` holding each of ``files`` (paths below ``folder``) at its path, as a hard link
    (a copy where the file system has none)."""
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(folder / rel, target)
        except OSError:
            shutil.copyfile(folder / rel, target)
    return dest


def _terraform_groups(folder: Path) -> list[list[str]]:
    """The ``.tf`` files below ``folder``, a whole root (a folder of them) in one run and
    :data:`TF_ROOTS_PER_RUN` roots a run: a run over 600 roots (a batch of 200 tenants) held
    2.2 GB and kept the other core idle once the Kubernetes runs were done."""
    roots: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.tf")):
        if path.is_file():
            rel = path.relative_to(folder).as_posix()
            roots.setdefault(posixpath.dirname(rel), []).append(rel)
    return _runs(roots, TF_ROOTS_PER_RUN)


def _kubernetes_groups(folder: Path, owners: Mapping[str, str]) -> list[list[str]]:
    """The files the Kubernetes framework reads below ``folder`` (workflows and the unit
    manifests aside: ~65 KB of JSON each, never a manifest of Kubernetes's), in runs of
    :data:`K8S_UNITS_PER_RUN` units; files no unit owns in runs of their own."""
    by_unit: dict[str | None, list[str]] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel.endswith(K8S_SUFFIXES) and not rel.startswith((".github/", f"{UNITS_DIR}/")) and path.is_file():
            by_unit.setdefault(owners.get(rel), []).append(rel)
    unowned = by_unit.pop(None, [])
    owned = {unit: files for unit, files in by_unit.items() if unit is not None}
    return _runs(owned, K8S_UNITS_PER_RUN) + _runs({rel: [rel] for rel in unowned}, K8S_FILES_PER_RUN)


def _runs(files_of: Mapping[str, list[str]], per_run: int) -> list[list[str]]:
    """The files of ``files_of``'s keys (a root, a unit), ``per_run`` keys a run, in key order."""
    keys = sorted(files_of)
    return [[rel for key in keys[i : i + per_run] for rel in files_of[key]] for i in range(0, len(keys), per_run)]


def _count_checkov(item: Mapping[str, Any], scoped: list[CheckovSkip], report: LintReport, result: ToolResult) -> None:
    """One framework's report of one checkov run, added to ``report`` and ``result``."""
    framework = item["check_type"]
    results = item.get("results", {})
    summary = item.get("summary", {})
    failed = 0
    skipped = len(results.get("skipped_checks", []))
    for check in results.get("failed_checks", []):
        rel = str(check.get("file_path", "")).lstrip("/")
        if any(check.get("check_id") == s.id and any(rel.startswith(p) for p in s.paths) for s in scoped):
            skipped += 1
            continue
        failed += 1
        lines = check.get("file_line_range") or [1]
        result.errors.append(f"{rel}:{lines[0]}: {check.get('check_id')} {check.get('check_name')} ({check.get('resource')}) [{framework}]")
    counts = report.checkov.setdefault(framework, {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0})
    counts["passed"] += int(summary.get("passed", 0))
    counts["failed"] += failed
    counts["skipped"] += skipped
    counts["parsing_errors"] += int(summary.get("parsing_errors", 0))
    if summary.get("parsing_errors"):
        result.errors.append(f"checkov could not parse {summary['parsing_errors']} {framework} file(s)")
    result.files += int(summary.get("resource_count", 0))


def _checkov_version(binary: str) -> str:
    proc = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip()


def format_text(report: LintReport) -> str:
    lines = [f"lint scope: {report.scope}"] if report.scope else []
    for tool in report.tools:
        status = "FAIL" if tool.errors else "ok"
        lines.append(f"{status:<4} {tool.name}: {tool.files} checked" + (f" ({tool.note})" if tool.note else ""))
        lines += [f"     {e}" for e in tool.errors]
    for framework, counts in sorted(report.checkov.items()):
        lines.append(f"     checkov {framework}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return "\n".join(lines)
