"""The isolation analyzer's parses kept by content (``ops.parse_memo``): a second run over an
unchanged tree parses nothing and finds the same, a changed file is parsed again (so a planted
fault is still found), a broken entry is a miss, the memo holds only what the tree holds, and
a parse keeps every block the analyzer reads. YAML read with libyaml equals PyYAML's pure-Python
documents on every rendered YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from generator import pipeline
from generator.ops import isolation, parse_memo
from helpers.rendered import copy_rendered, write_rendered

ORG = "companyos"
GLOBEX = "rendered/terraform/prod/tenant-globex/main.tf"
DEV_GLOBEX = "rendered/terraform/dev/tenant-globex/main.tf"


@pytest.fixture(scope="module")
def clean(sample: pipeline.Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rendered(sample, tmp_path_factory.mktemp("memo"))


@pytest.fixture
def tree(clean: Path, tmp_path: Path) -> Path:
    return copy_rendered(clean, tmp_path)


def entries(root: Path) -> dict[str, bytes]:
    folder = root / parse_memo.MEMO_DIR
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else {}


def loosen(root: Path, path: str) -> None:
    file = root / path
    text = file.read_text(encoding="utf-8")
    assert 'trust_condition_test = "StringEquals"' in text
    file.write_text(text.replace('trust_condition_test = "StringEquals"', 'trust_condition_test = "StringLike"', 1), encoding="utf-8")


def counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every python-hcl2 parse made in this process from now on."""
    calls: list[str] = []
    real = hcl2.loads
    monkeypatch.setattr(hcl2, "loads", lambda text, *a, **k: calls.append(text) or real(text, *a, **k))
    return calls


def test_a_second_run_parses_nothing_and_a_changed_file_is_parsed_again(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isolation.analyze(tree, ORG, cache=tree) == []
    parsed = isolation._parsed_files(tree / "rendered", isolation.environments(tree))
    kept = entries(tree)
    assert len(kept) == len({parse_memo._digest(p.read_bytes()) for p in parsed}) > 40
    calls = counting(monkeypatch)
    monkeypatch.setattr(parse_memo, "_LOADER", None)  # any YAML parse would fail now
    assert isolation.analyze(tree, ORG, cache=tree) == []
    assert calls == []
    monkeypatch.undo()
    calls = counting(monkeypatch)
    loosen(tree, GLOBEX)
    found = isolation.analyze(tree, ORG, cache=tree)
    assert [(f.env, f.layer, f.target) for f in found] == [("prod", "identity", "globex")]
    assert calls == [(tree / GLOBEX).read_text(encoding="utf-8")]


def test_a_broken_entry_is_a_miss_and_is_written_again(tree: Path) -> None:
    isolation.analyze(tree, ORG, cache=tree)
    key = parse_memo._digest((tree / GLOBEX).read_bytes())
    entry = next((tree / parse_memo.MEMO_DIR).rglob(key))
    good = entry.read_bytes()
    entry.write_bytes(good[: len(good) // 2])
    loosen(tree, DEV_GLOBEX)  # the run still judges: a finding elsewhere is found
    found = isolation.analyze(tree, ORG, cache=tree)
    assert [(f.env, f.target) for f in found] == [("dev", "globex")]
    assert entry.read_bytes() == good


def test_the_memo_holds_what_the_tree_holds(tree: Path) -> None:
    isolation.analyze(tree, ORG, cache=tree)
    before = parse_memo._digest((tree / GLOBEX).read_bytes())
    stale = tree / parse_memo.MEMO_DIR / "0123456789abcdef" / "ab" / "ab00"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"\x90")
    loosen(tree, GLOBEX)
    isolation.analyze(tree, ORG, cache=tree)
    kept = entries(tree)
    assert before not in kept and parse_memo._digest((tree / GLOBEX).read_bytes()) in kept
    assert not stale.parent.parent.exists()  # another version's folder
    # one environment's run keeps that environment's files (CI's job per environment)
    isolation.analyze(tree, ORG, cache=tree, only=["prod"])
    prod = isolation._parsed_files(tree / "rendered", ["prod"])
    assert set(entries(tree)) == {parse_memo._digest(p.read_bytes()) for p in prod}


def test_without_a_cache_nothing_is_written(tree: Path) -> None:
    assert isolation.analyze(tree, ORG) == []
    assert not (tree / parse_memo.MEMO_DIR).exists()


def test_a_parse_keeps_every_block_the_analyzer_reads(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The analyzer asks ``_blocks`` for what it reads: every (kind, type) it asks must be kept,
    or a check of a block left out would pass silently."""
    asked: set[tuple[str, str | None]] = set()
    real = isolation._blocks
    monkeypatch.setattr(isolation, "_blocks", lambda doc, kind, rtype=None: asked.add((kind, rtype)) or real(doc, kind, rtype))
    assert isolation.analyze(clean, ORG) == []
    assert ("resource", "aws_security_group_rule") in asked and ("module", None) in asked
    for kind, rtype in asked:
        kept = isolation.READ_BLOCKS[kind]
        assert kept is None or rtype in kept, (kind, rtype)
    text = (clean / GLOBEX).read_bytes()
    full = parse_memo.unquote(hcl2.loads(text.decode()))
    doc = parse_memo.parse_hcl(text, isolation.READ_BLOCKS)
    for kind, types in isolation.READ_BLOCKS.items():
        wanted = [b for b in full.get(kind, []) if types is None or next(iter(b)) in types]
        assert [{t: body} for b in wanted for t, body in b.items()] == doc[kind]
    assert doc["resource"] and len(doc["resource"]) < len(full["resource"])


def _pure_python_docs(text: str) -> list[tuple[int, Any]]:
    """The analyzer's reading before libyaml: compose, serialize, load again (the oracle)."""
    out = []
    for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
        if node is not None:
            doc = yaml.load(yaml.serialize(node), Loader=yaml.SafeLoader)
            if isinstance(doc, dict):
                out.append((node.start_mark.line + 1, doc))
    return out


def test_yaml_is_read_with_libyaml_as_pyyaml_reads_it(sample: pipeline.Build) -> None:
    assert yaml.__with_libyaml__ and parse_memo._LOADER is yaml.CSafeLoader
    files = [(p, d) for p, d in sample.result.files.items() if p.endswith(".yaml")]
    assert len(files) > 200
    for path, data in files:
        assert parse_memo.parse_yaml(data) == _pure_python_docs(data.decode()), path


def test_a_yaml_entry_that_would_not_read_back_is_not_kept(tmp_path: Path) -> None:
    """A hand-edited file with a timestamp: parsed every time, never kept as something else."""
    path = tmp_path / "a.yaml"
    path.write_text("kind: Namespace\nwhen: 2024-01-01\n---\nkind: Other\n", encoding="utf-8")
    memo = parse_memo.ParseMemo(tmp_path, isolation.READ_BLOCKS)
    docs = memo.yaml_docs(path)
    assert [line for line, _ in docs] == [1, 4] and str(docs[0][1]["when"]) == "2024-01-01"
    assert entries(tmp_path) == {}


def test_without_python_hcl2_the_analyzer_says_how_to_install_it(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """python-hcl2 is a test dependency (``make install-test``), not a runtime one."""
    import sys

    from generator.errors import UsageError

    monkeypatch.setitem(sys.modules, "hcl2", None)  # an import of it fails
    with pytest.raises(UsageError, match="needs python-hcl2, a test dependency: run `make install-test`"):
        isolation.analyze(tree, ORG, cache=tree)
