"""Resolving shares one validated settings object among tenants that customise nothing in an
environment (``model.resolve``): every shared object must equal what validating that tenant
alone gives, a tenant's service list and its overrides must still make its settings its own,
and a broken shared base must still be reported against each tenant."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator import pipeline
from generator.errors import CatalogErrors
from generator.model.resolve import resolve
from tests.helpers.catalog_edit import override
from tests.helpers.repo import copy_repo


def _tenant(root: Path, name: str, services: str, tier: str = "standard") -> None:
    (root / "tenants" / f"{name}.yaml").write_text(
        f"name: {name}\ntier: {tier}\nowner: ops@{name}.example\ncost_center: CC-2001\n"
        f"environments: [dev, stage, prod]\nservices: [{services}]\n"
    )


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    root = copy_repo(tmp_path / "repo")
    _tenant(root, "plain1", "api, web")
    _tenant(root, "plain2", "api, web")
    _tenant(root, "plain3", "api")
    _tenant(root, "custom", "api, web")
    override(root, "custom", "prod", {"services": {"api": {"replicas": 7}}})
    return root


def _settings(model, tenant: str, env: str):  # type: ignore[no-untyped-def]
    return next(d.settings for d in model.deployments if d.name == tenant and d.env == env)


def test_every_shared_settings_object_equals_the_tenant_resolved_alone(fleet: Path) -> None:
    catalog = pipeline.load(fleet)
    model = resolve(catalog)
    for deployment in model.deployments:
        alone = resolve(catalog, only={deployment.name})  # one tenant: nothing to share with
        assert deployment.settings == _settings(alone, deployment.name, deployment.env), deployment.name


def test_tenants_that_customise_nothing_share_one_object_and_the_others_do_not(fleet: Path) -> None:
    model = resolve(pipeline.load(fleet))
    assert _settings(model, "plain1", "prod") is _settings(model, "plain2", "prod")
    assert _settings(model, "plain3", "prod") is not _settings(model, "plain1", "prod")
    assert sorted(_settings(model, "plain3", "prod").services) == ["api"]
    custom = _settings(model, "custom", "prod")
    assert custom.services["api"].replicas == 7
    assert _settings(model, "plain1", "prod").services["api"].replicas != 7
    assert _settings(model, "custom", "dev") is _settings(model, "plain1", "dev")  # its override is prod's alone


def test_a_broken_shared_base_is_reported_for_every_tenant_that_uses_it(fleet: Path) -> None:
    # valid in the service file, broken once merged: burn-rate alerts over a 99% budget never fire
    service = fleet / "catalog" / "services" / "api.yaml"
    text = service.read_text()
    assert "availability: {objective: 99.9}" in text
    service.write_text(text.replace("availability: {objective: 99.9}", "availability: {objective: 1.0}"))
    with pytest.raises(CatalogErrors) as caught:
        resolve(pipeline.load(fleet))
    reported = {name for name in ("plain1", "plain2", "plain3") if any(f"tenant '{name}'" in str(e) for e in caught.value.errors)}
    assert reported == {"plain1", "plain2", "plain3"}


def test_customising_tenants_share_the_sections_they_leave_as_their_base(fleet: Path) -> None:
    """Two tenants that each customise something hold one object per section (and service)
    neither touched; what either customises is its own."""
    _tenant(fleet, "custom2", "api, web")
    override(fleet, "custom2", "prod", {"services": {"web": {"replicas": 5}}, "database": {"read_replicas": 2}})
    model = resolve(pipeline.load(fleet))
    one, two = _settings(model, "custom", "prod"), _settings(model, "custom2", "prod")
    assert one is not two
    assert one.network is two.network and one.cache is two.cache and one.kms is two.kms
    assert one.database is not two.database and two.database.read_replicas == 2 != one.database.read_replicas
    assert one.services["web"] is not two.services["web"] and two.services["web"].replicas == 5
    assert one.services["api"] is not two.services["api"] and one.services["api"].replicas == 7
    assert two.services["api"] == _settings(model, "plain1", "prod").services["api"]
    for name in ("custom", "custom2"):  # and each equals the tenant resolved alone
        assert _settings(model, name, "prod") == _settings(resolve(pipeline.load(fleet), only={name}), name, "prod")
