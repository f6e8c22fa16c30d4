"""``companyos isolation``: the sample render analyzes clean, and each planted hole in a
rendered copy -- network, identity, data -- is reported with the tenants it connects and the
rendered file:line of the hop (docs/isolation.md)."""

from __future__ import annotations

import ipaddress
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from generator import pipeline
from generator.ops import isolation
from helpers.rendered import copy_rendered, write_rendered
from helpers.repo import CliResult

ORG = "companyos"
ACME = "rendered/terraform/prod/tenant-acme/main.tf"
GLOBEX = "rendered/terraform/prod/tenant-globex/main.tf"
POOL = "rendered/terraform/prod/pool-standard/main.tf"
GLOBEX_NS = "rendered/argocd/prod/namespaces/globex.yaml"
GLOBEX_PROJECT = "rendered/argocd/prod/projects/globex.yaml"


@pytest.fixture(scope="module")
def clean(sample: pipeline.Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample catalog's fresh render, written under a scratch root (rendered/ only)."""
    return write_rendered(sample, tmp_path_factory.mktemp("isolation"))


@pytest.fixture
def tree(clean: Path, tmp_path: Path) -> Path:
    """A copy of the clean render to plant a fault in."""
    return copy_rendered(clean, tmp_path)


def plant(root: Path, path: str, old: str, new: str, count: int = 1) -> int:
    """Replace ``old`` (which must occur) in a rendered file; the 1-based line of the change."""
    file = root / path
    text = file.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    line = text[: text.index(old)].count("\n") + 1
    file.write_text(text.replace(old, new, count), encoding="utf-8")
    return line


def edit_docs(root: Path, path: str, change: Callable[[list[dict[str, object]]], None]) -> None:
    file = root / path
    docs = [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if d]
    change(docs)
    file.write_text(yaml.safe_dump_all(docs, explicit_start=True, sort_keys=False), encoding="utf-8")


def paths(findings: list[isolation.Finding]) -> set[tuple[str, str, str]]:
    return {(f.layer, f.source, f.target) for f in findings}


def test_sample_render_has_no_path_between_tenants(clean: Path) -> None:
    findings = isolation.analyze(clean, ORG)
    assert findings == [], isolation.to_text(findings)
    # it did look: every environment's tenants, pools and data networks
    world = isolation.World("prod", clean / "rendered", ORG)
    isolation._collect(world)
    assert world.tenants == {"acme", "globex", "hooli", "initech", "umbrella"}
    assert world.pools == {"pool-standard": {"globex", "hooli", "initech"}}
    assert len(world.data_cidrs) == 3


# --- network --------------------------------------------------------------------------------


def test_widened_data_security_group_is_a_path_from_anyone(tree: Path) -> None:
    old = 'source_security_group_id = "400000000001/${data.terraform_remote_state.shared.outputs.pod_security_group_ids[each.key]}"'
    text = (tree / ACME).read_text(encoding="utf-8")
    assert old in text
    line = plant(tree, ACME, old, 'cidr_blocks              = ["10.64.0.0/16"]')
    found = isolation.analyze(tree, ORG)
    assert ("network", "*", "acme") in paths(found)
    hop = next(f for f in found if f.target == "acme").hops[0]
    assert (hop.path, hop.line) == (ACME, line)
    assert "10.64.0.0/16" in hop.what


def test_pool_rule_admitting_a_dedicated_tenant(tree: Path) -> None:
    # the pool's rules iterate over its per-tenant files (tenants/<name>.json): plant one more
    assert "local.pool_tenants" in (tree / POOL).read_text(encoding="utf-8")
    assert isolation.analyze(tree, ORG) == []
    (tree / POOL).with_name("tenants").joinpath("acme.json").write_text('{"tenant": "acme"}\n', encoding="utf-8")
    assert {("network", "acme", t) for t in ("globex", "hooli", "initech")} <= paths(isolation.analyze(tree, ORG))


def test_pool_rule_listing_a_dedicated_tenant(tree: Path) -> None:
    plant(tree, POOL, "for_each = local.pool_tenants", 'for_each = toset(["acme"])', count=2)
    assert {("network", "acme", t) for t in ("globex", "hooli", "initech")} <= paths(isolation.analyze(tree, ORG))


def test_network_policy_egress_without_to(tree: Path) -> None:
    def drop_to(docs: list[dict[str, object]]) -> None:
        policy = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "allow-api")  # type: ignore[index]
        del policy["spec"]["egress"][0]["to"]  # type: ignore[index]

    edit_docs(tree, GLOBEX_NS, drop_to)
    found = [f for f in isolation.analyze(tree, ORG) if f.layer == "network"]
    assert [(f.source, f.target) for f in found] == [("globex", "*")]
    assert "without 'to:'" in found[0].hops[0].what and found[0].hops[0].path == GLOBEX_NS


def test_network_policy_reaching_another_tenants_data_vpc(tree: Path) -> None:
    def reach(docs: list[dict[str, object]]) -> None:
        policy = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "allow-api")  # type: ignore[index]
        policy["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "10.65.16.0/24"}}], "ports": [{"port": 5432}]})  # type: ignore[index]

    edit_docs(tree, GLOBEX_NS, reach)
    assert ("network", "globex", "acme") in paths(isolation.analyze(tree, ORG))


def test_network_policy_ingress_from_every_namespace(tree: Path) -> None:
    def open_ingress(docs: list[dict[str, object]]) -> None:
        policy = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "allow-api")  # type: ignore[index]
        policy["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}})  # type: ignore[index]

    edit_docs(tree, GLOBEX_NS, open_ingress)
    assert ("network", "globex", "*") in paths(isolation.analyze(tree, ORG))


def test_two_namespaces_sharing_a_pod_security_group(tree: Path) -> None:
    acme = (tree / "rendered/argocd/prod/namespaces/acme.yaml").read_text(encoding="utf-8")
    theirs = next(line.split("- ")[1] for line in acme.splitlines() if line.strip().startswith("- sg-"))
    ours = next(
        line.split("- ")[1] for line in (tree / GLOBEX_NS).read_text(encoding="utf-8").splitlines() if line.strip().startswith("- sg-")
    )
    plant(tree, GLOBEX_NS, f"- {ours}", f"- {theirs}")
    assert ("network", "globex", "acme") in paths(isolation.analyze(tree, ORG))


# --- identity -------------------------------------------------------------------------------


def test_shared_namespace(tree: Path) -> None:
    plant(tree, GLOBEX_NS, "name: tenant-globex", "name: tenant-hooli")
    found = paths(isolation.analyze(tree, ORG))
    assert ("identity", "globex", "hooli") in found


def test_irsa_trust_loosened_to_string_like(tree: Path) -> None:
    line = plant(tree, GLOBEX, 'trust_condition_test = "StringEquals"', 'trust_condition_test = "StringLike"')
    found = [f for f in isolation.analyze(tree, ORG)]
    assert [(f.layer, f.source, f.target) for f in found] == [("identity", "*", "globex")]
    assert found[0].hops[0].line == line and found[0].hops[0].path == GLOBEX


def test_irsa_trusting_another_tenants_service_account(tree: Path) -> None:
    plant(tree, GLOBEX, 'namespace_service_accounts = ["tenant-globex:api"]', 'namespace_service_accounts = ["tenant-hooli:api"]')
    assert paths(isolation.analyze(tree, ORG)) == {("identity", "hooli", "globex")}


def test_secret_reader_trusting_another_namespace(tree: Path) -> None:
    plant(tree, GLOBEX, 'values   = ["tenant-globex"]', 'values   = ["tenant-hooli"]')
    assert ("identity", "hooli", "globex") in paths(isolation.analyze(tree, ORG))


def test_secret_store_assuming_another_tenants_reader(tree: Path) -> None:
    plant(tree, GLOBEX_NS, "-globex-secret-reader", "-hooli-secret-reader")
    assert ("identity", "globex", "hooli") in paths(isolation.analyze(tree, ORG))


def test_app_project_destination_and_role_of_another_tenant(tree: Path) -> None:
    plant(tree, GLOBEX_PROJECT, "namespace: tenant-globex", "namespace: tenant-hooli")
    plant(tree, GLOBEX_PROJECT, "- companyos-tenant-globex", "- companyos-tenant-hooli")
    found = paths(isolation.analyze(tree, ORG))
    assert ("identity", "globex", "hooli") in found  # globex's apps land in hooli's namespace
    assert ("identity", "hooli", "globex") in found  # hooli's team syncs globex's project


def test_role_binding_for_another_tenants_group(tree: Path) -> None:
    plant(tree, GLOBEX_NS, "name: companyos-tenant-globex", "name: companyos-tenant-hooli")
    assert paths(isolation.analyze(tree, ORG)) == {("identity", "hooli", "globex")}


# --- data -----------------------------------------------------------------------------------


def test_pooled_role_granted_the_whole_bucket(tree: Path) -> None:
    line = plant(tree, GLOBEX, "companyos-prod-pool-standard-data/tenants/globex/*", "companyos-prod-pool-standard-data/*")
    found = isolation.analyze(tree, ORG)
    assert ("data", "globex", "*") in paths(found)
    assert any(h.line == line for f in found for h in f.hops)


def test_pooled_role_granted_a_neighbours_prefix(tree: Path) -> None:
    plant(tree, GLOBEX, "pool-standard-data/tenants/globex/*", "pool-standard-data/tenants/hooli/*")
    assert ("data", "globex", "hooli") in paths(isolation.analyze(tree, ORG))


def test_pool_bucket_without_its_tenant_policy(tree: Path) -> None:
    plant(tree, POOL, "  attach_policy", "  # attach_policy")
    assert {("data", "*", t) for t in ("globex", "hooli", "initech")} <= paths(isolation.analyze(tree, ORG))


def test_tenant_role_using_another_key(tree: Path) -> None:
    plant(tree, GLOBEX, "resources = [module.kms.key_arn]\n    }\n    queue", 'resources = ["*"]\n    }\n    queue')
    assert ("data", "globex", "*") in paths(isolation.analyze(tree, ORG))


# --- the command ----------------------------------------------------------------------------


def test_cli_exit_codes_and_json(repo: Path, clean: Path, companyos: Callable[..., CliResult]) -> None:
    shutil.rmtree(repo / "rendered")  # the command reads what is on disk: a fresh render
    shutil.copytree(clean / "rendered", repo / "rendered")
    ok = companyos("isolation", cwd=repo)
    assert (ok.code, ok.out) == (0, "isolation: no path between tenants\n")
    line = plant(repo, GLOBEX, 'trust_condition_test = "StringEquals"', 'trust_condition_test = "StringLike"')
    bad = companyos("isolation", "--format", "json", cwd=repo)
    assert bad.code == 1
    report = json.loads(bad.out)
    assert report["ok"] is False
    assert report["findings"][0]["path"][0] == {
        "file": GLOBEX,
        "line": line,
        "what": "IRSA role companyos-prod-globex-api trust uses StringLike",
    }
    text = companyos("isolation", cwd=repo)
    assert (
        text.code == 1
        and f"prod: identity: * -> globex: IRSA role companyos-prod-globex-api trust uses StringLike ({GLOBEX}:{line})" in text.out
    )


def test_the_collector_runs_while_roots_are_parsed_and_is_left_as_found(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """python-hcl2's parses leave reference cycles; the console script turns the collector off
    (``cli.main.entry``): at 1,000 tenants x 3 the analyzer held 6.8 GB of them."""
    import gc

    import hcl2

    seen: list[bool] = []
    real = hcl2.loads
    monkeypatch.setattr(hcl2, "loads", lambda text, *a, **k: seen.append(gc.isenabled()) or real(text, *a, **k))
    gc.disable()
    try:
        assert isolation.analyze(clean, ORG) == []
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert seen and all(seen)


def test_the_owner_maps_are_made_once_per_environment(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each Terraform root is judged in its own copy of the world: the copies share the maps
    (made anew per root, they were a pass over every tenant per root: quadratic)."""
    made: list[str] = []
    real = isolation.naming.tenant_group_of  # asked only to make the group map
    monkeypatch.setattr(isolation.naming, "tenant_group_of", lambda org, tenant: made.append(tenant) or real(org, tenant))
    world = isolation.World("prod", clean / "rendered", ORG)
    isolation._collect(world)
    assert len(made) == len(world.tenants) == 5


def test_cli_one_environment_at_a_time(repo: Path, clean: Path, companyos: Callable[..., CliResult]) -> None:
    """``--env``: one CI job per environment at scale; an environment not rendered is a usage error."""
    shutil.rmtree(repo / "rendered")
    shutil.copytree(clean / "rendered", repo / "rendered")
    plant(repo, GLOBEX, 'trust_condition_test = "StringEquals"', 'trust_condition_test = "StringLike"')
    assert companyos("isolation", "--env", "dev", "--env", "stage", cwd=repo).code == 0
    prod = companyos("isolation", "--env", "prod", cwd=repo)
    assert prod.code == 1 and prod.out.startswith("prod: identity: * -> globex:")
    unknown = companyos("isolation", "--env", "qa", cwd=repo)
    assert unknown.code == 2 and "no rendered environment 'qa' (rendered: dev, prod, stage)" in unknown.err
    assert (repo / ".companyos-cache" / "rendered-parses").is_dir()  # the command keeps its parses


def _network(draw: Callable[..., object], v6: bool) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    bits = 128 if v6 else 32
    prefix = draw(st.integers(min_value=0 if not v6 else 96, max_value=bits))
    address = draw(st.integers(min_value=0, max_value=2**bits - 1))
    return ipaddress.ip_network((address, prefix), strict=False)


@st.composite
def _blocks_and_data(draw: Callable[..., object]) -> tuple[list[object], object, tuple[object, ...]]:
    # few distinct top bits, so nesting and overlap happen often
    def net() -> object:
        v6 = draw(st.booleans()) if draw(st.integers(0, 9)) == 0 else False
        found = _network(draw, v6)
        return found.supernet(new_prefix=max(0, found.prefixlen - draw(st.integers(0, 3)))) if found.prefixlen else found

    data = draw(st.lists(st.builds(net), min_size=0, max_size=25, unique=True))
    cidr = net()
    excepts = tuple(draw(st.lists(st.builds(net), max_size=3)))
    return data, cidr, excepts


@given(_blocks_and_data())
@example(([ipaddress.ip_network("10.0.0.255/32")], ipaddress.ip_network("10.0.0.0/24"), ()))  # starts at the block's last address
@example(([ipaddress.ip_network("10.0.0.0/8")], ipaddress.ip_network("10.1.0.0/16"), ()))  # a supernet of the block
@settings(max_examples=300, deadline=None)
def test_an_ip_block_reaches_what_a_scan_of_every_data_network_finds(case: tuple[list[object], object, tuple[object, ...]]) -> None:
    """``World.reached`` (supernets by lookup, subnets by bisection, once per distinct block)
    against the scan it replaced: every data network, in order, overlapping and in no except."""
    data, cidr, excepts = case
    world = isolation.World("prod", Path("rendered"), ORG)
    world.data_cidrs = {d: {f"t{n}"} for n, d in enumerate(data)}  # type: ignore[misc]
    scan = [
        (d, owners)
        for d, owners in world.data_cidrs.items()
        if d.version == cidr.version  # type: ignore[attr-defined]
        and cidr.overlaps(d)  # type: ignore[attr-defined]
        and not any(d.subnet_of(e) for e in excepts if e.version == d.version)  # type: ignore[attr-defined]
    ]
    assert world.reached(cidr, excepts) == scan  # type: ignore[arg-type]
    assert world.reached(cidr, excepts) == scan  # type: ignore[arg-type]  # asked again: the kept answer


def test_the_reached_networks_follow_the_data_networks_when_they_change() -> None:
    world = isolation.World("prod", Path("rendered"), ORG)
    block = ipaddress.ip_network("10.0.0.0/8")
    world.data_cidrs = {ipaddress.ip_network("10.1.0.0/16"): {"acme"}}
    assert [d for d, _ in world.reached(block, ())] == [ipaddress.ip_network("10.1.0.0/16")]
    world.data_cidrs = {ipaddress.ip_network("10.2.0.0/16"): {"globex"}}
    assert [d for d, _ in world.reached(block, ())] == [ipaddress.ip_network("10.2.0.0/16")]


def _sql_owner_by_scan(tenants: set[str], token: str, own: str) -> str | None:
    """The lookup ``_sql_owner`` replaced (the oracle): every tenant, own first, then longest."""
    for tenant in sorted([own, *(t for t in tenants if t != own)], key=lambda t: (t != own, -len(t))):
        ident = tenant.replace("-", "_")
        if token in (tenant, ident, f"tenant_{ident}") or token.startswith(f"{ident}_"):
            return tenant
    return None


_TENANT = st.from_regex(r"\A[ab][ab-]{0,4}[ab]\Z")


@given(st.sets(_TENANT, min_size=1, max_size=12), st.data())
@settings(max_examples=300, deadline=None)
def test_a_bootstrap_sql_name_is_owned_as_a_scan_of_every_tenant_finds(tenants: set[str], data: st.DataObject) -> None:
    own = data.draw(st.sampled_from(sorted(tenants)))
    base = data.draw(st.sampled_from(sorted(tenants))).replace("-", "_")
    token = data.draw(st.sampled_from([base, f"tenant_{base}", f"{base}_app", f"{base}_b_reader", "b_a", "app"]))
    world = isolation.World("prod", Path("rendered"), ORG, tenants=tenants)
    found, expected = isolation._sql_owner(world, token, own), _sql_owner_by_scan(tenants, token, own)
    # equal, but for a tie between two names of one length (the scan's order there was a set's)
    assert (found is None) == (expected is None)
    if found is not None and expected is not None:
        assert len(found) == len(expected) and isolation._names_tenant(token, found)
        assert (found == own) == (expected == own)


def test_a_sql_name_two_tenants_share_is_the_longer_ones() -> None:
    """``tenant_a`` is tenant ``a``'s prefixed name and tenant ``tenant-a``'s identifier."""
    tenants = {"a", "tenant-a", "b"}
    world = isolation.World("prod", Path("rendered"), ORG, tenants=tenants)
    assert isolation._sql_owner(world, "tenant_a", "b") == _sql_owner_by_scan(tenants, "tenant_a", "b") == "tenant-a"
    assert isolation._sql_owner(world, "tenant_a_reader", "b") == _sql_owner_by_scan(tenants, "tenant_a_reader", "b") == "tenant-a"
