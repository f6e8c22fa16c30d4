"""VPC allocation: catalog/networks.yaml is validated on load, `companyos allocate` fills in
what is missing without moving anything, and no two VPCs of an environment (or its DR
region) overlap."""

from __future__ import annotations

import ipaddress
import itertools
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from generator.errors import CatalogErrors
from generator.model import networks
from generator.ops.allocate import allocate
from generator.targets.terraform.addressing import subnets
from helpers.catalog_edit import edit_yaml
from helpers.repo import snapshot

NETWORKS = "catalog/networks.yaml"


def _vpcs(root: Path) -> dict[str, dict[str, str]]:
    data = YAML(typ="safe").load((root / NETWORKS).read_text())
    return {env: dict(block.get("vpcs") or {}) for env, block in data["environments"].items()}


def _add_dedicated_tenant(root: Path, name: str, accounts: dict[str, str]) -> None:
    text = (root / "tenants/acme.yaml").read_text()
    text = text.replace("name: acme", f"name: {name}").replace("CC-1001", "CC-1009")
    for env, old in (("dev", "210000000101"), ("stage", "310000000101"), ("prod", "410000000101")):
        text = text.replace(old, accounts[env])
    (root / f"tenants/{name}.yaml").write_text(text)


def test_sample_allocations_never_overlap_in_an_environment_or_its_dr_region(sample):
    nets: networks.Networks = sample.model.catalog.single("networks").spec
    for env in nets.environments:
        blocks = [networks.vpc_cidr(nets, env, key) for key in nets.environments[env].vpcs]
        blocks += [networks.dr_cidr(nets, env, key) for key in nets.environments[env].vpcs]
        assert len(blocks) >= 6
        for a, b in itertools.combinations(blocks, 2):
            assert not a.overlaps(b), (env, a, b)
    # stronger than required: the sample keeps every environment apart as well
    every = [ipaddress.IPv4Network(c) for block in nets.environments.values() for c in (block.primary, block.dr)]
    for a, b in itertools.combinations(every, 2):
        assert not a.overlaps(b), (a, b)


def test_sample_has_an_allocation_for_every_vpc_it_renders(sample):
    required = networks.required_vpcs(sample.model.catalog)
    recorded = _vpcs(Path(sample.root))
    for env, keys in required.items():
        assert set(keys) <= set(recorded[env]), env
    assert "tenant-acme" in required["dev"] and "pool-standard" in required["dev"]
    assert "tenant-umbrella" not in required["dev"]  # umbrella is not deployed to dev


def test_allocate_is_a_no_op_on_the_sample(repo):
    before = snapshot(repo)
    assert allocate(repo) == []
    assert snapshot(repo) == before


def test_new_tenant_gets_a_fresh_block_and_nothing_else_moves(repo, companyos):
    before_text = (repo / NETWORKS).read_text()
    before = _vpcs(repo)
    _add_dedicated_tenant(repo, "zeta", {"dev": "210000000199", "stage": "310000000199", "prod": "410000000199"})

    # without an allocation the render refuses, pointing at the tenant and the fix
    result = companyos("render", cwd=repo)
    assert result.code == 2
    assert "tenants/zeta.yaml:" in result.err and "run `companyos allocate`" in result.err

    result = companyos("allocate", cwd=repo)
    assert result.code == 0, result.err
    assert result.out.count("tenant-zeta") == 3
    after = _vpcs(repo)
    for env, vpcs in before.items():
        assert {k: after[env][k] for k in vpcs} == vpcs  # stable
        new = ipaddress.IPv4Network(after[env]["tenant-zeta"])
        assert all(not new.overlaps(ipaddress.IPv4Network(c)) for c in vpcs.values())
    # existing lines (and the comments) are byte-for-byte where they were
    after_text = (repo / NETWORKS).read_text()
    assert [line for line in after_text.splitlines() if "tenant-zeta" not in line] == before_text.splitlines()

    assert companyos("render", cwd=repo).code == 0
    assert (repo / "rendered/terraform/prod/tenant-zeta/main.tf").is_file()


def test_removing_a_tenant_releases_its_block_only(repo, companyos):
    before = _vpcs(repo)
    (repo / "tenants/umbrella.yaml").unlink()
    result = companyos("render", cwd=repo)
    assert result.code == 2
    assert f"{NETWORKS}:" in result.err and "unknown tenant 'umbrella'" in result.err and "release" in result.err

    lines = allocate(repo)
    assert sorted(lines) == sorted(f"{env}: released tenant-umbrella {before[env]['tenant-umbrella']}" for env in ("stage", "prod"))
    after = _vpcs(repo)
    for env, vpcs in before.items():
        assert after[env] == {k: v for k, v in vpcs.items() if k != "tenant-umbrella"}
    assert companyos("render", cwd=repo).code == 0


def test_dry_run_writes_nothing(repo):
    _add_dedicated_tenant(repo, "zeta", {"dev": "210000000199", "stage": "310000000199", "prod": "410000000199"})
    before = snapshot(repo)
    lines = allocate(repo, write=False)
    assert len(lines) == 3
    assert snapshot(repo) == before


def test_running_out_of_space_is_an_error_not_an_overlap(repo):
    def shrink(data):
        # dev's /12 holds the /16 shared VPC and the two /20s already there, nothing more
        data["environments"]["dev"]["primary"] = "10.0.0.0/15"
        data["environments"]["dev"]["dr"] = "10.16.0.0/15"
        data["environments"]["dev"]["vpcs"]["shared"] = "10.0.0.0/16"
        data["shared_prefix"] = 16

    edit_yaml(repo / NETWORKS, shrink)
    for i in range(16 - 2):  # fill the rest of 10.1.0.0/16 with /20 blocks
        edit_yaml(
            repo / NETWORKS,
            lambda data, i=i: data["environments"]["dev"]["vpcs"].__setitem__(f"tenant-x{i:02d}", f"10.1.{32 + 16 * i}.0/20"),
        )
    for i in range(14):
        (repo / f"tenants/x{i:02d}.yaml").write_text(
            (repo / "tenants/acme.yaml")
            .read_text()
            .replace("name: acme", f"name: x{i:02d}")
            .replace("210000000101", f"2100000002{i:02d}")
            .replace("310000000101", f"3100000002{i:02d}")
            .replace("410000000101", f"4100000002{i:02d}")
        )
    _add_dedicated_tenant(repo, "zeta", {"dev": "210000000199", "stage": "310000000199", "prod": "410000000199"})
    before = snapshot(repo)
    with pytest.raises(CatalogErrors) as info:
        allocate(repo)
    (error,) = info.value.errors
    assert error.location.path == NETWORKS and error.location.line > 1
    assert "no free /20 left in 10.0.0.0/15 for tenant-zeta in 'dev'" in error.message
    assert snapshot(repo) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["environments"]["dev"]["vpcs"].__setitem__("tenant-acme", "10.1.16.1/20"), "host bits"),
        (lambda d: d["environments"]["dev"]["vpcs"].__setitem__("tenant-acme", "10.1.300.0/20"), "not an IPv4 CIDR"),
        (lambda d: d["environments"]["dev"]["vpcs"].__setitem__("tenant-acme", "10.1.0.0/20"), "overlaps pool-standard 10.1.0.0/20"),
        # a larger block holding a VPC recorded before it (the sorted sweep sees the containment)
        (lambda d: d["environments"]["dev"]["vpcs"].__setitem__("tenant-acme", "10.1.0.0/16"), "overlaps pool-standard 10.1.0.0/20"),
        (lambda d: d["environments"]["dev"]["vpcs"].__setitem__("tenant-acme", "10.40.0.0/20"), "outside the environment's primary space"),
        (lambda d: d["environments"]["dev"].__setitem__("dr", "10.0.0.0/12"), "overlaps primary"),
        (lambda d: d["environments"]["dev"]["vpcs"].__setitem__("tenant-nobody", "10.2.0.0/20"), "unknown tenant 'nobody'"),
        (lambda d: d["environments"]["dev"]["vpcs"].__setitem__("tenant-umbrella", "10.2.0.0/20"), "not deployed to 'dev'"),
        (lambda d: d["environments"]["dev"]["vpcs"].__setitem__("tenant-globex", "10.2.0.0/20"), "is pooled"),
        (lambda d: d["environments"].__setitem__("qa", {"primary": "10.96.0.0/12", "dr": "10.112.0.0/12"}), "unknown environment 'qa'"),
    ],
    ids=[
        "host-bits",
        "malformed",
        "overlap",
        "overlap-containing",
        "outside-space",
        "dr-overlap",
        "unknown-tenant",
        "not-deployed",
        "pooled-tenant",
        "unknown-env",
    ],
)
def test_bad_allocations_are_located_errors_and_nothing_is_written(repo, companyos, change, message):
    edit_yaml(repo / NETWORKS, change)
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2
    located = [line for line in result.err.splitlines() if message in line]
    assert located, result.err
    path, line, col = located[0].split(":")[:3]
    assert path == NETWORKS and int(line) > 1 and int(col) >= 1
    assert snapshot(repo) == before


def test_missing_address_space_for_an_environment_is_explained(repo, companyos):
    edit_yaml(repo / NETWORKS, lambda d: d["environments"].__delitem__("stage"))
    result = companyos("allocate", cwd=repo)
    assert result.code == 2
    assert "no address space for environment 'stage'" in result.err


def test_subnets_are_inside_the_vpc_and_disjoint():
    vpc = ipaddress.IPv4Network("10.1.16.0/20")
    private, public = subnets(vpc, 3)
    nets = [ipaddress.IPv4Network(s) for s in private + public]
    assert len(nets) == 6 and all(n.subnet_of(vpc) for n in nets)
    for a, b in itertools.combinations(nets, 2):
        assert not a.overlaps(b)


def test_the_overlap_sweep_agrees_with_comparing_every_pair() -> None:
    """``_any_overlap`` (one sorted pass) decides exactly what the pairwise comparison does, on
    random aligned blocks of mixed sizes, many of them nested or equal."""
    import random

    from generator.model.networks import _any_overlap

    rng = random.Random(7)
    for _ in range(400):
        nets = []
        for _ in range(rng.randint(0, 12)):
            prefix = rng.randint(14, 24)
            nets.append(ipaddress.IPv4Network((rng.randrange(0, 1 << 20) << 12 & (~0 << (32 - prefix)) & 0xFFFFFFFF, prefix)))
        pairwise = any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[:i])
        assert _any_overlap(nets) == pairwise, nets


def test_required_vpcs_in_one_pass_are_what_each_environment_asks_for(repo: Path) -> None:
    """One pass over the tenants gives, per environment, the keys a pass per environment
    gives: the shared VPC, the pools its tenants use (sorted), each dedicated tenant that
    deploys there (by name), the drill VPC where DR is on; a tenant of an unknown tier none."""
    from generator.catalog.load import read_catalog
    from generator.model import naming

    (repo / "tenants/solo.yaml").write_text((repo / "tenants/acme.yaml").read_text().replace("name: acme", "name: solo"))
    edit_yaml(repo / "tenants/solo.yaml", lambda data: data.update(environments=["prod", "prod"]))
    (repo / "tenants/lost.yaml").write_text((repo / "tenants/globex.yaml").read_text().replace("name: globex", "name: lost"))
    edit_yaml(repo / "tenants/lost.yaml", lambda data: data.update(tier="no-such-tier"))
    catalog, _ = read_catalog(repo)
    for env, keys in networks.required_vpcs(catalog).items():
        tenants = [(name, e.spec) for name, e in sorted(catalog.tenants.items()) if env in e.spec.environments]
        tiers = {name: catalog.tiers.get(t.tier) for name, t in tenants}
        pools = sorted({naming.pool_root(t.tier) for name, t in tenants if tiers[name] and tiers[name].spec.isolation != "dedicated"})
        own = [naming.tenant_root(name) for name, t in tenants if tiers[name] and tiers[name].spec.isolation == "dedicated"]
        drill = [networks.DRILL_VPC] if catalog.environments[env].spec.disaster_recovery is not None else []
        assert keys == [naming.SHARED_ROOT, *pools, *own, *drill], env
    assert networks.required_vpcs(catalog)["prod"].count(naming.tenant_root("solo")) == 1
