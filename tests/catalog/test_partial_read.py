"""Reading the catalog for a few tenants (``read_catalog(tenants=)``): ``check --base`` resolves
the base commit's settings of the tenants a pull request changed, and at 10,000 tenants reading
every base tenant file for them was most of that (docs/benchmark.md). The other tenants are
known to exist without being read: naming one is not a mistake, and a fault in one is not seen."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator import pipeline
from generator.catalog.load import read_catalog
from generator.errors import CatalogErrors
from generator.model.references import check_references
from generator.model.resolve import resolve
from tests.helpers.catalog_edit import override
from tests.helpers.repo import copy_repo


def test_only_the_named_tenants_are_read_and_the_others_count_as_defined(repo: Path) -> None:
    every = sorted(p.stem for p in (repo / "tenants").glob("*.yaml"))
    assert len(every) > 2 and "acme" in every
    (repo / "tenants/hooli.yaml").write_text("name: [unclosed\n")  # a fault in a file not read is not seen
    catalog, errors = read_catalog(repo, ["acme"])
    assert sorted(catalog.tenants) == ["acme"] and not errors
    assert catalog.unread == frozenset(every) - {"acme"}
    assert catalog.defines("tenant", "umbrella") and not catalog.defines("tenant", "nobody")
    # networks.yaml keeps the other tenants' allocations, waivers and flag rules may name them
    assert check_references(catalog) == []
    with pytest.raises(CatalogErrors, match=r"hooli\.yaml"):
        pipeline.load(repo)  # the whole catalog still sees it


def test_a_reference_to_a_tenant_with_no_file_is_still_reported(repo: Path) -> None:
    networks = repo / "catalog/networks.yaml"
    text = networks.read_text()
    assert "umbrella" in text
    networks.write_text(text.replace("umbrella", "nobody"))
    catalog, _ = read_catalog(repo, ["acme"])
    assert any("unknown tenant 'nobody'" in str(e) for e in check_references(catalog))


def test_the_partial_model_holds_the_same_settings_as_the_whole_one(tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    override(root, "globex", "prod", {"database": {"deletion_protection": False}})
    whole = resolve(pipeline.load(root))
    part = resolve(pipeline.load(root, ["globex", "acme"]), ["globex", "acme"])
    assert sorted(part.catalog.tenants) == ["acme", "globex"]
    wanted = sorted((d.name, d.env) for d in whole.deployments if d.name in ("acme", "globex"))
    assert sorted((d.name, d.env) for d in part.deployments) == wanted
    for name, env in wanted:
        assert part.deployment(name, env) == whole.deployment(name, env)
    assert part.deployment("globex", "prod").settings.database.deletion_protection is False
