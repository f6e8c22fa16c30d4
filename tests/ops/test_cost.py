"""The cost guard: figures on a tiny, hand-computed catalog, the pooled share, the table's
order, and the threshold tripping against a base ref."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from generator.catalog import spec
from generator.ops import cost
from helpers.catalog_edit import edit_yaml, override
from helpers.gitrepo import commit_all

#: A tiny price table with round numbers, so the expected figures below can be checked
#: with pencil and paper.
TINY_PRICING = {
    "hours_per_month": 100,
    "database_instance_hourly": {"db.t4g.tiny": 1.0},
    "database_storage_gb_month": 0.1,
    "cache_node_hourly": {"cache.t4g.tiny": 0.5},
    "nat_gateway_hourly": 0.2,
    "nat_gateway_gb_processed": 0.01,
    "interface_endpoint_hourly": 0.01,
    "vcpu_hourly": 0.1,
    "memory_gb_hourly": 0.01,
    "s3_gb_month": 0.02,
    "kms_key_month": 1.0,
    "log_ingest_gb": 0.5,
    "log_storage_gb_month": 0.03,
    "egress_gb": 0.1,
    "usage": {"default": {"nat_processed_gb": 1000, "s3_stored_gb": 500, "log_ingested_gb_per_replica": 10, "egress_gb": 100}},
}

#: A tiny resolved settings tree: one service, everything cost-relevant spelled out.
TINY_SETTINGS = {
    "network": {"az_count": 2, "nat_gateways": "per_az", "vpc_endpoints": ["s3", "sts", "ssm"], "public_ingress": True},
    "database": {
        "engine_version": "16.4",
        "instance_class": "db.t4g.tiny",
        "allocated_storage_gb": 100,
        "max_allocated_storage_gb": 200,
        "multi_az": True,
        "backup_retention_days": 35,
        "pitr": True,
        "deletion_protection": True,
        "cross_region_copy": True,
        "read_replicas": 1,
    },
    "cache": {"node_type": "cache.t4g.tiny", "shards": 2, "replicas_per_shard": 1, "snapshot_retention_days": 1},
    "storage": {
        "versioning": True,
        "object_lock": "compliance",
        "object_lock_days": 1,
        "lifecycle": {"ia_days": 30, "glacier_days": 90, "expire_days": 365},
    },
    "kms": {"rotation_days": 90},
    "logs": {"retention_days": 60},
    "budget": {"monthly_usd": 1000, "alert_thresholds": [80, 100], "notify": ["a@example.com"]},
    "quota": {"requests_cpu": "1", "requests_memory": "1Gi", "limits_cpu": "1", "limits_memory": "1Gi", "pods": 10},
    "services": {
        "app": {
            "replicas": 2,
            "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
            "autoscaling": {"enabled": True, "min_replicas": 3, "max_replicas": 9, "target_cpu_percent": 70},
            "canary": {"enabled": False},
            "image_tag": None,
        }
    },
}

#: The same, by hand (hours_per_month = 100):
#: database: 1.0 $/h x 100 h x (2 copies for Multi-AZ + 1 read replica) = 300
#:           + 100 GB x 0.1 $/GB x 3 copies                              =  30  -> 330
#: cache:    0.5 $/h x 100 h x 2 shards x (1 + 1 replica)                       -> 200
#: network:  2 NAT (per_az, 2 AZs) x 0.2 x 100 = 40; 1000 GB x 0.01 = 10;
#:           2 interface endpoints (sts, ssm; s3 is a free gateway) x 2 AZs x 0.01 x 100 = 4 -> 54
#: compute:  3 replicas (autoscaling min) x (0.5 vCPU x 0.1 + 2 GiB x 0.01) x 100 = 3 x 0.07 x 100 -> 21
#: storage:  500 GB x 0.02                                                      -> 10
#: kms:                                                                         ->  1
#: logs:     30 GB ingested (3 replicas x 10) x 0.5 = 15; stored 30 GB x 60/30 months x 0.03 = 1.8 -> 16.8
#: egress:   100 GB x 0.1                                                       -> 10
EXPECTED_PARTS = {
    "database": 330.0,
    "cache": 200.0,
    "network": 54.0,
    "compute": 21.0,
    "storage": 10.0,
    "kms": 1.0,
    "logs": 16.8,
    "egress": 10.0,
}
EXPECTED_TOTAL = 642.8


@pytest.fixture(scope="module")
def tiny(sample):
    """A dedicated deployment of the sample, with the tiny settings tree swapped in."""
    d = next(d for d in sample.model.deployments if d.dedicated)
    # SLO and metrics settings do not affect cost: take the sample's, so the tree is complete
    donor = next(iter(d.settings.services.values()))
    settings = copy.deepcopy(TINY_SETTINGS)
    settings["services"]["app"].update(slo=donor.slo.model_dump(), metrics=donor.metrics.model_dump())
    return dataclasses.replace(d, settings=spec.Settings.model_validate(settings))


def test_tiny_catalog_by_hand(tiny):
    pricing = spec.Pricing.model_validate(TINY_PRICING)
    estimate = cost._estimate(tiny, pricing, pool_size=1, pricing_at=None)
    assert {k: round(v, 6) for k, v in estimate.parts.items()} == EXPECTED_PARTS
    assert estimate.total == EXPECTED_TOTAL
    assert estimate.budget == 1000


def test_pooled_tenants_share_the_data_plane(tiny):
    pricing = spec.Pricing.model_validate(TINY_PRICING)
    shared = cost._estimate(tiny, pricing, pool_size=4, pricing_at=None)
    for part in ("database", "cache", "network"):
        assert shared.parts[part] == pytest.approx(EXPECTED_PARTS[part] / 4)
    for part in ("compute", "storage", "kms", "logs", "egress"):
        assert shared.parts[part] == pytest.approx(EXPECTED_PARTS[part])


def test_quantities():
    assert cost.cpu("250m") == 0.25 and cost.cpu("2") == 2.0
    assert cost.memory_gib("256Mi") == 0.25 and cost.memory_gib("1Gi") == 1.0 and cost.memory_gib("1Ti") == 1024.0


def test_sample_estimate_covers_every_deployment(sample):
    report = cost.run(sample.model)
    assert {(r.tenant, r.environment) for r in report.deployments} == {(d.name, d.env) for d in sample.model.deployments}
    assert all(r.current and r.current > 0 for r in report.deployments)
    # pooled tenants split the pool: their data-plane share is smaller than a dedicated one
    pricing, _ = cost.pricing_of(sample.model)
    by_key = {(e.tenant, e.environment): e for e in cost.estimate(sample.model, pricing)}
    pooled = [e for (t, env), e in by_key.items() if not sample.model.deployment(t, env).dedicated]
    sizes = {}
    for d in sample.model.deployments:
        if not d.dedicated:
            sizes[d.env] = sizes.get(d.env, 0) + 1
    for e in pooled:
        d = sample.model.deployment(e.tenant, e.environment)
        alone = cost._estimate(d, pricing, 1, None)
        assert e.parts["database"] == pytest.approx(alone.parts["database"] / sizes[e.environment])


def test_missing_price_is_located(companyos, repo):
    path = repo / "catalog/pricing.yaml"
    edit_yaml(path, lambda d: d["database_instance_hourly"].pop("db.r6g.xlarge"))
    result = companyos("cost", cwd=repo)
    assert result.code == 2 and "Traceback" not in result.err
    assert "catalog/pricing.yaml:" in result.err and "db.r6g.xlarge" in result.err


@pytest.fixture
def committed(repo: Path) -> Path:
    commit_all(repo, "base")
    return repo


def test_threshold_trips_against_base(companyos, committed):
    base = json.loads(companyos("cost", "--format", "json", cwd=committed).out)
    before = {r["tenant"]: r["current"] for r in base["tenants"]}
    # globex doubles its prod API fleet
    override(committed, "globex", "prod", {"services": {"api": {"autoscaling": {"min_replicas": 12, "max_replicas": 24}}}})
    result = companyos("cost", "--base", "HEAD", "--max-increase", "5", "--format", "json", cwd=committed)
    assert result.code == 1, result.err
    data = json.loads(result.out)
    assert data["exceeded"] == ["globex"]
    rows = {r["tenant"]: r for r in data["tenants"]}
    assert rows["globex"]["base"] == before["globex"]
    assert rows["globex"]["change_percent"] > 5
    assert all(rows[t]["change"] == 0 for t in rows if t != "globex")
    assert data["tenants"][0]["tenant"] == "globex", "sorted by change, largest rise first"
    assert "tenant 'globex' monthly estimate rises" in result.err
    # a looser threshold passes, and the text table says what changed
    result = companyos("cost", "--base", "HEAD", "--max-increase", "1000", cwd=committed)
    assert result.code == 0, result.err
    first = result.out.splitlines()[2]
    assert first.startswith("globex") and "+" in first


def test_removed_pooled_tenant_shifts_its_share_to_the_pool(companyos, committed):
    (committed / "tenants/hooli.yaml").unlink()
    result = companyos("cost", "--base", "HEAD", "--max-increase", "50", "--format", "json", cwd=committed)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    rows = {r["tenant"]: r for r in data["tenants"]}
    assert rows["hooli"]["status"] == "removed" and rows["hooli"]["current"] is None
    assert data["exceeded"] == []
    # the pool's cost is now split among fewer tenants: every other pooled tenant rises
    for tenant in ("globex", "initech"):
        assert rows[tenant]["change"] > 0
    for tenant in ("acme", "umbrella"):  # dedicated: unaffected
        assert rows[tenant]["change"] == 0


def test_base_that_no_longer_loads_is_reported_not_compared(companyos, repo):
    path = repo / "tenants/globex.yaml"
    good = path.read_text(encoding="utf-8")
    path.write_text(good + "retired_field: true\n", encoding="utf-8")  # a format today's code rejects
    commit_all(repo, "old format")
    path.write_text(good, encoding="utf-8")
    result = companyos("cost", "--base", "HEAD", "--max-increase", "0", "--format", "json", cwd=repo)
    assert result.code == 0, result.err
    assert "warning: not compared with HEAD" in result.err and "retired_field" in result.err
    data = json.loads(result.out)
    assert data["base"] is None and data["exceeded"] == [] and data["tenants"]
