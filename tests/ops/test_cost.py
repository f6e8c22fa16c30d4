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
    # SLO, metrics, flags and alarms settings do not affect cost: take the sample's, so the
    # tree is complete
    donor = next(iter(d.settings.services.values()))
    settings = copy.deepcopy(TINY_SETTINGS)
    settings["services"]["app"].update(
        slo=donor.slo.model_dump(),
        metrics=donor.metrics.model_dump(),
        flags={name: flag.model_dump() for name, flag in donor.flags.items()},
    )
    settings["alarms"] = d.settings.alarms.model_dump()
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


# --- capacity levers and the unit-cost gate (issue 18) -------------------------------------------


def _levers_of(sample, tenant: str, env: str, **prices: object) -> cost.Estimate:
    pricing, _ = cost.pricing_of(sample.model)
    d = sample.model.deployment(tenant, env)
    pool = sum(1 for x in sample.model.in_environment(env) if not x.dedicated) if not d.dedicated else 1
    return cost._estimate(d, pricing.model_copy(update=prices), pool, None)


def test_spot_lever_is_the_discount_on_spot_compute(sample):
    """hooli's worker runs on spot (standard tier): the lever is exactly what the discount removes."""
    full = _levers_of(sample, "hooli", "prod", spot_discount_percent=0)
    cheap = _levers_of(sample, "hooli", "prod", spot_discount_percent=50)
    assert "spot" not in full.levers
    saved = full.parts["compute"] - cheap.parts["compute"]
    assert saved > 0 and cheap.levers["spot"] == pytest.approx(-saved)
    # a regulated tenant may not use spot: no saving, whatever the discount
    assert "spot" not in _levers_of(sample, "acme", "prod", spot_discount_percent=50).levers


def test_consolidation_assumption_scales_compute(sample):
    packed = _levers_of(sample, "globex", "prod", karpenter_utilization_percent=100)
    loose = _levers_of(sample, "globex", "prod", karpenter_utilization_percent=50)
    assert loose.parts["compute"] == pytest.approx(2 * packed.parts["compute"])
    assert loose.levers["consolidation_headroom"] == pytest.approx(packed.parts["compute"])


def test_scale_to_zero_saves_the_idle_share_in_dev_only(sample):
    busy = _levers_of(sample, "hooli", "dev")
    pricing, _ = cost.pricing_of(sample.model)
    assert pricing.usage["dev"].idle_share > 0 and busy.levers["scale_to_zero"] < 0
    assert "scale_to_zero" not in _levers_of(sample, "hooli", "prod").levers


def test_rds_proxy_priced_per_vcpu_and_shared_by_the_pool(sample):
    pricing, _ = cost.pricing_of(sample.model)
    est = _levers_of(sample, "globex", "prod")
    d = sample.model.deployment("globex", "prod")
    pool = sum(1 for x in sample.model.in_environment("prod") if not x.dedicated)
    vcpus = max(2, pricing.database_instance_vcpus[d.settings.database.instance_class])
    expected = vcpus * pricing.rds_proxy_vcpu_hourly * pricing.hours_per_month * (2 if d.settings.database.multi_az else 1) / pool
    assert est.parts["db_proxy"] == pytest.approx(expected) and est.levers["rds_proxy"] == pytest.approx(expected)
    assert "db_proxy" not in _levers_of(sample, "acme", "prod").parts  # the regulated tier declares no pooling


def test_log_archive_is_its_own_storage_class(sample):
    est = _levers_of(sample, "globex", "prod")
    assert est.parts["logs_archive"] > 0 and est.parts["logs_archive"] < est.parts["logs"]
    assert "logs_archive" not in _levers_of(sample, "globex", "prod", log_archive_gb_month=0).parts


def test_unit_cost_gate_names_the_top_contributors():
    base = [cost.Estimate("t", "prod", {"compute": 100.0, "database": 100.0, "logs": 10.0}, 1000, units=1000.0)]
    now = [cost.Estimate("t", "prod", {"compute": 150.0, "database": 110.0, "logs": 9.0}, 1000, units=1000.0)]
    report = cost.compare(now, base, "HEAD", max_increase=1000)
    report.max_unit_increase = 20
    (unit,) = report.units
    assert (unit.base, unit.current) == (0.21, 0.269)
    assert unit.change_percent == 28.1 and report.unit_exceeded == [unit]
    assert unit.contributors == (("compute", 50.0), ("database", 10.0))  # logs fell: not a contributor
    report.max_unit_increase = 30
    assert report.unit_exceeded == []
    # more units for the same money is a fall, not a regression
    grown = [cost.Estimate("t", "prod", {"compute": 150.0, "database": 110.0, "logs": 9.0}, 1000, units=2000.0)]
    assert cost.compare(grown, base, "HEAD", 1000).units[0].change_percent < 0


def test_unit_gate_fails_the_cli_with_contributors(companyos, committed):
    # every tenant's requests shrink by half while the bill stays: cost per unit doubles
    edit_yaml(committed / "catalog/pricing.yaml", lambda d: [u.__setitem__("requests_k", u["requests_k"] / 2) for u in d["usage"].values()])
    result = companyos("cost", "--base", "HEAD", "--format", "json", cwd=committed)
    assert result.code == 1, result.err
    data = json.loads(result.out)
    assert data["exceeded"] == [] and sorted(data["unit_exceeded"]) == sorted(r["tenant"] for r in data["unit_costs"])
    assert "cost per 1k requests rises +100.0%" in result.err and "top contributors" in result.err
    assert set(data["levers"]) >= {"spot", "rds_proxy", "consolidation_headroom", "scale_to_zero", "log_archive"}
    assert companyos("cost", "--base", "HEAD", "--max-unit-increase", "150", cwd=committed).code == 0


def test_a_large_fleet_is_grouped_in_one_pass_and_judged_once(monkeypatch):
    """Rows per tenant are the sums of that tenant's deployments (interleaved in the input), and
    the text report asks which tenants exceed the threshold once, not once per row: at 10,000
    tenants x 3 both were quadratic (``cost --base`` took ~5 minutes)."""
    envs = ("dev", "stage", "prod")
    base = [cost.Estimate(f"t{i:03d}", env, {"compute": 10.0 + i}, 1000, units=100.0) for env in envs for i in range(300)]
    now = [
        cost.Estimate(f"t{i:03d}", env, {"compute": 10.0 + i * (2 if i % 7 == 0 else 1)}, 1000, units=100.0)
        for env in envs
        for i in range(300)
    ]
    report = cost.compare(now, base, "HEAD", max_increase=10)
    by_tenant = {r.tenant: r for r in report.tenants}
    for i in (0, 1, 7, 299):
        name = f"t{i:03d}"
        assert by_tenant[name].base == round(sum(e.total for e in base if e.tenant == name), 2)
        assert by_tenant[name].current == round(sum(e.total for e in now if e.tenant == name), 2)
    asked = []
    exceeded = cost.CostReport.exceeded
    monkeypatch.setattr(cost.CostReport, "exceeded", property(lambda self: asked.append(1) or exceeded.fget(self)))
    text = cost.format_text(report)
    assert len(asked) == 1
    flagged = {line.split()[0] for line in text.splitlines() if "rises more than 10%" in line}
    assert flagged == {f"t{i:03d}" for i in range(7, 300, 7)}  # t000: 10 -> 10 (0 * 2)
    assert {u.tenant for u in report.unit_exceeded} == flagged
