"""The tenants' names as last derived (``catalog.file_memo``, ``.companyos-cache/names``): a
tenant's names are derived again only when its file or the rest of the catalog changed, a
clash with a tenant whose names were memoized is reported exactly as without the memo, a
memo from elsewhere is never used, and a failed run does not write it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from generator import pipeline
from generator.catalog.load import Catalog
from generator.errors import CatalogErrors
from generator.model import name_registry
from generator.output.parse_store import MEMO_PATH, encode
from helpers.catalog_edit import write_tenant
from helpers.repo import REPO


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    """A scratch copy of the catalog inputs (these runs never render)."""
    for item in ("catalog", "tenants", "environments", "templates"):
        shutil.copytree(REPO / item, tmp_path / item)
    return tmp_path


@pytest.fixture
def derived(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tenants whose names are derived, in order, as the registry derives them."""
    calls: list[str] = []
    real = name_registry._tenant_names

    def counted(registry: Any, catalog: Catalog, platform: Any, entry: Any) -> None:
        calls.append(entry.spec.name)
        real(registry, catalog, platform, entry)

    monkeypatch.setattr(name_registry, "_tenant_names", counted)
    return calls


def _clean(root: Path) -> Catalog:
    """Load (raising on any error) and keep the parses and memo as a clean run does."""
    catalog = pipeline.load(root)
    encode(root, catalog).save(root)
    return catalog


def _errors(root: Path) -> list[str]:
    with pytest.raises(CatalogErrors) as raised:
        pipeline.load(root)
    return [str(e) for e in raised.value.errors]


def _without_memo(root: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "load_memo", lambda *a, **k: None)
        return _errors(root)


def _edit(path: Path, change: Callable[[str], str]) -> None:
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")


def test_only_the_edited_tenants_names_are_derived_again(cat: Path, derived: list[str]) -> None:
    first = _clean(cat)
    tenants = sorted(first.tenants)
    assert sorted(derived) == tenants  # nothing memoized yet: every tenant derived once
    derived.clear()
    _clean(cat)
    assert derived == []  # every tenant's digests reused
    _edit(cat / "tenants/acme.yaml", lambda t: t.replace("\nowner:", "\n# one line down\nowner:"))
    _clean(cat)
    assert derived == ["acme"]
    derived.clear()
    _clean(cat)  # the saved memo: the others' facts taken from the old file, acme's new one
    assert derived == []
    _edit(cat / "catalog/services/api.yaml", lambda t: t + "\n")  # the context: every fact derived again
    _clean(cat)
    assert sorted(derived) == tenants


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many digests each comparison of the whole sequence took (none: the proof held)."""
    sizes: list[int] = []
    real = name_registry.all_different

    def counted(digests: Any) -> bool:
        sizes.append(len(digests))
        return real(digests)

    monkeypatch.setattr(name_registry, "all_different", counted)
    return sizes


def test_a_sequence_proven_apart_is_not_compared_again_until_a_name_changes(cat: Path, derived: list[str], compared: list[int]) -> None:
    """The first clean run compares every digest and keeps the proof; a run with the same
    digests (nothing changed, or an owner edited: acme's names derived again, the same) does
    not compare them; a new tenant changes the sequence, and a clash it brings is found."""
    _clean(cat)
    assert len(compared) == 1 and compared[0] > 0
    compared.clear()
    _clean(cat)
    assert compared == []
    _edit(cat / "tenants/acme.yaml", lambda t: t.replace("\nowner:", "\n# one line down\nowner:"))
    derived.clear()
    _clean(cat)
    assert derived == ["acme"] and compared == []
    write_tenant(cat, "acme-api", "web")
    _clean(cat)
    assert len(compared) == 1
    compared.clear()
    write_tenant(cat, "namespace-acme", "api")  # claims acme-api's Application dev-namespace-acme-api
    assert any("dev-namespace-acme-api" in e for e in _errors(cat))
    assert len(compared) == 1


def test_a_proof_of_other_digests_is_replaced_by_this_runs(cat: Path, compared: list[int]) -> None:
    """A memo whose facts all still hold but whose proof covers other digests: the run
    compares, and keeps its own proof although no fact changed."""
    _clean(cat)
    version, context, facts, proofs = msgspec.msgpack.decode((cat / MEMO_PATH).read_bytes())
    assert set(proofs) == {"names-apart"}
    (cat / MEMO_PATH).write_bytes(msgspec.msgpack.encode([version, context, facts, {"names-apart": b"\0" * 32}]))
    compared.clear()
    _clean(cat)
    assert len(compared) == 1
    compared.clear()
    _clean(cat)
    assert compared == []


def test_a_clash_with_a_memoized_tenant_is_reported_as_without_the_memo(
    cat: Path, derived: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``acme-api``'s names are memoized; the new tenant ``namespace-acme`` + service ``api``
    claims its Application ``dev-namespace-acme-api``: the digests prove nothing, the full
    check names both owners at their lines, the same errors as a run without the memo."""
    write_tenant(cat, "acme-api", "web")
    _clean(cat)
    memo = (cat / MEMO_PATH).read_bytes()
    write_tenant(cat, "namespace-acme", "api")
    derived.clear()
    errors = _errors(cat)
    assert "acme-api" in derived  # the full check derived the memoized tenant's names again
    assert errors == _without_memo(cat, monkeypatch)
    clash = [e for e in errors if "dev-namespace-acme-api" in e]
    assert len(clash) == 1 and clash[0].startswith("tenants/namespace-acme.yaml:") and "tenants/acme-api.yaml:1:" in clash[0]
    assert (cat / MEMO_PATH).read_bytes() == memo  # a failed run does not write it


def test_a_name_too_long_in_the_new_tenant_is_reported(cat: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its IRSA role ``<org>-<env>-<tenant>-<service>`` is 68 characters (IAM allows 64)."""
    _edit(cat / "catalog/platform.yaml", lambda t: t.replace("organization: companyos", "organization: abcdefghijklmnopqrst"))
    api = (cat / "catalog/services/api.yaml").read_text(encoding="utf-8")
    (cat / "catalog/services" / f"{'s' * 20}.yaml").write_text(api.replace("name: api\n", f"name: {'s' * 20}\n", 1), encoding="utf-8")
    _clean(cat)
    write_tenant(cat, "t" * 20, "s" * 20)
    errors = _errors(cat)
    assert errors == _without_memo(cat, monkeypatch)
    assert any(f"IAM role 'abcdefghijklmnopqrst-dev-{'t' * 20}-{'s' * 20}'" in e and "at most 64" in e for e in errors)


def _forge_empty(root: Path, rel: str) -> None:
    """Make the memo say ``rel``'s tenant claims no name at all (its identity kept)."""
    version, context, facts, proofs = msgspec.msgpack.decode((root / MEMO_PATH).read_bytes())
    facts[rel][1] = b""
    (root / MEMO_PATH).write_bytes(msgspec.msgpack.encode([version, context, facts, proofs]))


def test_a_memo_from_elsewhere_is_never_used(cat: Path, tmp_path: Path) -> None:
    """A forged memo hides ``acme-api``'s names. Where it was made, with its identities, it
    is trusted (the plant is live: a local cache is believed); copied to another checkout
    (say, committed to a pull request) the stat stamps differ and the clash is reported."""
    write_tenant(cat, "acme-api", "web")
    _clean(cat)
    _forge_empty(cat, "tenants/acme-api.yaml")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(cat, elsewhere, copy_function=shutil.copy2)  # bytes and mtimes kept, not inodes
    for root in (cat, elsewhere):
        write_tenant(root, "namespace-acme", "api")
    pipeline.load(cat)  # the forged memo, believed where it was made
    assert any("dev-namespace-acme-api" in e for e in _errors(elsewhere))


def test_damaged_or_older_memos_read_as_empty(cat: Path, derived: list[str]) -> None:
    tenants = sorted(_clean(cat).tenants)
    for data in (b"", b"\x93garbage", msgspec.msgpack.encode([0, b"", {}])):
        (cat / MEMO_PATH).write_bytes(data)
        derived.clear()
        pipeline.load(cat)  # no error: every tenant derived afresh
        assert sorted(derived) == tenants


def test_full_and_base_reads_do_not_reuse_the_memo(cat: Path, derived: list[str]) -> None:
    _clean(cat)
    _forge_empty(cat, "tenants/acme.yaml")
    derived.clear()
    catalog = pipeline.load(cat, parses="fresh")
    assert "acme" in derived and catalog.memo is not None
    derived.clear()
    assert pipeline.load(cat, parses="none").memo is None and "acme" in derived
