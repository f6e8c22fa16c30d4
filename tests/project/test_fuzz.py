"""Hostile catalog files, generated: every run ends in exit 0 or 2, never a traceback, never
a write outside rendered/ and .github/workflows/, never a partially written tree; and
template syntax inside values comes out literally.

One scratch repository per module; each example writes one file, runs ``render``
in-process, checks the tree, and puts everything back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from generator import pipeline
from generator.catalog.folders import MANIFEST_PATH
from generator.output import tree
from helpers.repo import copy_repo, snapshot
from helpers.yaml_docs import load_yaml_docs

#: Where a run may write: the outputs, and the verified-clean cache (generator/checkcache.py).
OUTPUT_PREFIXES = ("rendered/", ".github/workflows/", ".companyos-cache/")

#: Files a pull request typically edits, one of each kind.
TARGETS = (
    "tenants/globex.yaml",
    "tenants/acme.yaml",
    "catalog/services/web.yaml",
    "catalog/tiers/standard.yaml",
    "environments/dev.yaml",
    "catalog/platform.yaml",
    "catalog/waivers.yaml",
    "catalog/pricing.yaml",
)

NASTY_STRINGS = [
    "../../../etc/passwd",
    "..",
    "a/b",
    "/abs/path",
    "x\\y",
    "{{ 7*7 }}",
    "{% for i in range(10) %}x{% endfor %}",
    "{{ cycler.__init__.__globals__.os }}",
    "${{ github.token }}",
    "$(id)",
    "\x00",
    "\u202e",
    "é",
    "ﬁ",
    "  ",
    "",
    "A" * 300,
    "-leading-dash",
    "null",
    "~",
    "yes",
    "0x10",
    "1e400",
    "*",
    "&anchor",
    "!!python/object",
    "\ud7ff",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NASTY_STRINGS),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["name", "tier", "x", "..", "a/b", "{{x}}"]) | st.text(max_size=8), inner, max_size=3),
    ),
    max_leaves=8,
)

RAW_HOSTILE = [
    b"a: &a [1,2]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
    b"name: !!python/object/apply:os.system ['touch /tmp/companyos-pwned']\n",
    b"!!python/name:os.system\n",
    b"\xff\xfe\x00n\x00a\x00m\x00e",
    b"name: caf\xe9\n",
    b"\xef\xbb\xbfname: globex\n",
    b"[" * 200 + b"]" * 200,
    b"a:\n" + b"".join(b" " * (2 * i) + b"a:\n" for i in range(1, 60)),
    b"- just\n- a\n- list\n",
    b"",
    b"name: globex\nname: other\n",
    b"? [complex, key]\n: value\n",
    b"1: integer key\n",
    b"x: " + b"9" * 5000 + b"\n",
    b"%YAML 1.1\n---\nname: a\n---\nname: b\n",
    b"<<: {tier: standard}\n",
]


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_repo(tmp_path_factory.mktemp("fuzz") / "repo")
    for tenant in ("hooli", "initech"):  # two pooled tenants fewer: a faster render, same code paths
        (root / f"tenants/{tenant}.yaml").unlink()
    pipeline.render_to_disk(root)
    return root


def _mutate(data: Any, path: list[int], value: Any, mode: str) -> Any:
    """Replace, delete or add at a pseudo-random path through ``data``."""
    if not path or not isinstance(data, (dict, list)) or not data:
        return value
    if isinstance(data, dict):
        keys = sorted(data)
        key = keys[path[0] % len(keys)]
        if len(path) == 1 and mode == "delete":
            return {k: v for k, v in data.items() if k != key}
        if len(path) == 1 and mode == "add":
            return {**data, f"{key}_extra": value}
        return {**data, key: _mutate(data[key], path[1:], value, mode)}
    index = path[0] % len(data)
    out = list(data)
    out[index] = _mutate(out[index], path[1:], value, mode)
    return out


def _complete(root: Path) -> None:
    """The tree on disk is whole: every manifest entry exists with its hash, and nothing
    under rendered/ is missing from the manifest."""
    manifest = tree.read_manifest(root)  # every unit manifest: the files and the manifests themselves
    for rel, entry in manifest.items():
        assert rel.startswith(OUTPUT_PREFIXES) and ".." not in rel.split("/"), rel
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == entry["sha256"], f"partial tree: {rel}"
    for path in (root / "rendered").rglob("*"):
        rel = path.relative_to(root).as_posix()
        assert path.is_dir() or rel == MANIFEST_PATH or rel in manifest, f"unlisted file {rel}"


def run_case(companyos, root: Path, rel: str, data: bytes, inspect: Callable[[Path], None] | None = None) -> int:
    before = snapshot(root)
    outside_before = sorted(p.name for p in root.parent.iterdir())
    target = root / rel
    original = target.read_bytes() if target.exists() else None
    changed: set[str] = set()
    try:
        target.write_bytes(data)
        result = companyos("render", "--quiet", cwd=root)
        assert result.code in (0, 2), (result.code, result.err[-2000:])
        assert "Traceback" not in result.err and "Traceback" not in result.out
        after = snapshot(root)
        changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)} - {rel}
        assert sorted(p.name for p in root.parent.iterdir()) == outside_before, "wrote beside the repository"
        if result.code == 2:
            assert changed == set(), f"a failed render changed {sorted(changed)[:5]}"
            assert result.err.strip(), "exit 2 must say why"
        else:
            outside = sorted(p for p in changed if not p.startswith(OUTPUT_PREFIXES))
            assert outside == [], f"wrote outside the output folders: {outside}"
            _complete(root)
            if inspect is not None:
                inspect(root)
        return result.code
    finally:
        if original is None:
            target.unlink(missing_ok=True)
        else:
            target.write_bytes(original)
        for p in changed:
            path = root / p
            if p in before:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(before[p])
            else:
                path.unlink(missing_ok=True)


#: Shrinking a render-sized example can take minutes; the examples are derandomized, so a
#: failure reproduces as printed.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)

FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
    database=None,
    phases=NO_SHRINK,
)


@FUZZ
@given(
    rel=st.sampled_from(TARGETS),
    path=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=5),
    value=values,
    mode=st.sampled_from(["replace", "delete", "add"]),
)
def test_mutated_catalog_files(companyos, fuzz_root, rel, path, value, mode):
    data = yaml.safe_load((fuzz_root / rel).read_text(encoding="utf-8"))
    mutated = _mutate(data, path, value, mode)
    try:
        text = yaml.safe_dump(mutated, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, ValueError):
        return
    run_case(companyos, fuzz_root, rel, text.encode("utf-8", "surrogatepass"))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
    database=None,
    phases=NO_SHRINK,
)
@given(
    rel=st.sampled_from(TARGETS)
    | st.sampled_from(
        [
            "tenants/..yaml",
            "tenants/a..b.yaml",
            "tenants/UPPER.yaml",
            "tenants/café.yaml",
            "tenants/" + "x" * 60 + ".yaml",
            "catalog/services/new.yaml",
        ]
    ),
    data=st.sampled_from(RAW_HOSTILE) | st.binary(max_size=300),
)
def test_raw_hostile_bytes(companyos, fuzz_root, rel, data):
    run_case(companyos, fuzz_root, rel, data)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
    database=None,
    phases=NO_SHRINK,
)
@given(name=st.sampled_from(NASTY_STRINGS) | st.text(min_size=1, max_size=25))
def test_hostile_tenant_names(companyos, fuzz_root, name):
    tenant = yaml.safe_load((fuzz_root / "tenants/globex.yaml").read_text(encoding="utf-8"))
    tenant["name"] = name
    stem = name if name and "/" not in name and "\x00" not in name and name not in (".", "..") else "evil"
    text = yaml.safe_dump(tenant, allow_unicode=True).encode("utf-8", "surrogatepass")
    try:
        code = run_case(companyos, fuzz_root, f"tenants/{stem}.yaml", text)
    except OSError:  # the file system refused the name itself: nothing to test
        return
    if code == 0:
        assert name == stem and name.isascii() and "/" not in name


#: Free-text fields that reach the output (Helm values, Jobs, Terraform, workflows): a
#: hostile value here usually renders, so these examples exercise the success path.
FREE_TEXT = (
    ("catalog/services/web.yaml", ("image", "repository")),
    ("catalog/services/api.yaml", ("migrations", "command", 0)),
    ("environments/dev.yaml", ("domain",)),
)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
    database=None,
    phases=NO_SHRINK,
)
@given(field=st.sampled_from(FREE_TEXT), value=st.sampled_from(NASTY_STRINGS) | st.text(min_size=1, max_size=40))
@example(field=FREE_TEXT[2], value='x\nresource "null_resource" "injected" {}')  # HCL injection through a comment
@example(field=FREE_TEXT[1], value="--x\n  injected: true")  # YAML injection through a run: script
@example(field=FREE_TEXT[0], value="repo\x7f")  # a character YAML forbids unescaped
def test_hostile_free_text_renders_verbatim(companyos, fuzz_root, field, value):
    """When a hostile string is accepted, every output still parses and carries it verbatim."""
    import hcl2

    rel, keys = field
    data = yaml.safe_load((fuzz_root / rel).read_text(encoding="utf-8"))
    node = data
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    text = yaml.safe_dump(data, allow_unicode=True).encode("utf-8", "surrogatepass")
    before = snapshot(fuzz_root)
    outputs: dict[str, bytes] = {}

    def inspect(root: Path) -> None:
        after = snapshot(root)
        outputs.update({p: b for p, b in after.items() if before.get(p) != b and p.startswith(OUTPUT_PREFIXES)})

    code = run_case(companyos, fuzz_root, rel, text, inspect=inspect)
    if code != 0:
        return
    found = False
    tf_parsed = 0
    for path, raw in sorted(outputs.items()):
        if path.endswith((".yaml", ".yml")):
            docs = load_yaml_docs(raw)
            found = found or any(value in s for doc in docs for s in _strings(doc))
        elif path.endswith(".json"):
            json.loads(raw)
        elif path.endswith(".tf") and tf_parsed < 2:
            hcl2.loads(raw.decode("utf-8"))
            tf_parsed += 1
    if value.strip() and outputs:
        assert found, f"{value!r} accepted but not found verbatim in any changed YAML output"


def test_template_syntax_in_values_is_literal(companyos, repo):
    """Jinja inside a catalog value is data: it reaches the output verbatim."""
    hostile = "--label={{ 7*7 }}{% if true %}x{% endif %}{#c#}"
    path = repo / "catalog/services/api.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["migrations"]["command"] = ["/app/bin/migrate", hostile]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = companyos("render", "--quiet", cwd=repo)
    assert result.code == 0, result.err
    jobs = sorted((repo / "rendered/migrations").rglob("api.yaml"))
    assert jobs
    for job in jobs:
        strings = [s for doc in load_yaml_docs(job.read_bytes()) for s in _strings(doc)]
        assert hostile in strings, job
        assert not any("49" in s and "label" in s for s in strings)
