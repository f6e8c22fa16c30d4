"""The name clashes left by the load to the policy's worker (``pipeline.resolve_named``, for
``check --base``): whatever else fails, the errors raised are the ones a load that checks the
names raises, all at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generator import pipeline
from generator.errors import CatalogErrors
from helpers.catalog_edit import write_tenant
from helpers.repo import REPO


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    """A scratch copy of the catalog inputs with a name clash: ``namespace-acme`` + service
    ``api`` claims ``acme-api``'s Application ``dev-namespace-acme-api``."""
    for item in ("catalog", "tenants", "environments", "templates"):
        shutil.copytree(REPO / item, tmp_path / item)
    write_tenant(tmp_path, "acme-api", "web")
    write_tenant(tmp_path, "namespace-acme", "api")
    return tmp_path


def _raised(call: object) -> CatalogErrors:
    with pytest.raises(CatalogErrors) as raised:
        call()  # type: ignore[operator]
    return raised.value


def _same(left: CatalogErrors, right: CatalogErrors) -> bool:
    return left.errors == right.errors and left.root_cause_count == right.root_cause_count


def test_the_load_leaves_the_names_alone_when_nothing_else_fails(cat: Path) -> None:
    catalog = pipeline.load(cat, parses="none", names=False)
    assert "namespace-acme" in catalog.tenants
    loaded = _raised(lambda: pipeline.load(cat, parses="none"))
    assert any("dev-namespace-acme-api" in str(e) and "collides with" in str(e) for e in loaded.errors)


def test_a_clash_with_another_load_error_is_raised_with_it(cat: Path) -> None:
    """An unknown service besides the clash: the load raises both, as when it checks the names."""
    path = cat / "tenants/acme.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("services: [", "services: [nosuch, ", 1), encoding="utf-8")
    left = _raised(lambda: pipeline.load(cat, parses="none", names=False))
    assert _same(left, _raised(lambda: pipeline.load(cat, parses="none")))
    assert any("nosuch" in str(e) for e in left.errors) and any("collides with" in str(e) for e in left.errors)


def test_a_clash_in_a_catalog_that_does_not_resolve_is_raised_as_the_load_raises_it(cat: Path) -> None:
    """api's availability objective of 1.0 loads, then fails every tenant's resolve: the
    clash is what a load that checks the names refuses first."""
    service = cat / "catalog/services/api.yaml"
    text = service.read_text(encoding="utf-8")
    assert "availability: {objective: 99.9}" in text
    service.write_text(text.replace("availability: {objective: 99.9}", "availability: {objective: 1.0}"), encoding="utf-8")
    named = _raised(lambda: pipeline.resolve_named(cat))
    assert _same(named, _raised(lambda: pipeline.load(cat, parses="none")))
    assert any("collides with" in str(e) for e in named.errors)
    (cat / "tenants/namespace-acme.yaml").unlink()  # no clash: the resolve's own errors
    assert "tenant 'acme'" in str(_raised(lambda: pipeline.resolve_named(cat)))
