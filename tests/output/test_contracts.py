"""The contract check and the consumer limits at render: the sample is a closed world, and
each planted break (in a scratch copy's templates or catalog, or a target's output) fails
``check`` with exit 2, nothing written, at the catalog line that caused the consumer."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import pipeline
from generator.errors import CatalogError, CatalogErrors
from generator.output import contracts, limits
from generator.targets.contracts import KINDS
from generator.targets.terraform import target as terraform


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(root: Path, location: str) -> str:
    """The text at ``path:line:col`` of the scratch repository."""
    path, line, _ = location.rsplit(":", 2)
    return (root / path).read_text(encoding="utf-8").splitlines()[int(line) - 1]


def broken(companyos: Any, repo: Path, needle: str) -> list[str]:
    """``companyos check`` fails with exit 2 and the lines naming ``needle``; nothing written."""
    before = {p: p.read_bytes() for p in (repo / "rendered").rglob("*") if p.is_file()}
    result = companyos("check", cwd=repo)
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err
    assert {p: p.read_bytes() for p in (repo / "rendered").rglob("*") if p.is_file()} == before
    lines = [line for line in result.err.splitlines() if needle in line]
    assert lines, result.err
    return lines


# --- the sample -------------------------------------------------------------------------------


def test_the_sample_has_no_broken_enforced_contract_and_every_kind_is_declared(sample: pipeline.Build) -> None:
    found = contracts.links(sample.result.declared)
    statuses = Counter((link.contract.kind, link.status) for link in found)
    assert not [link.message for link in found if link.strict and link.status != "ok"]
    for kind in KINDS:
        assert statuses[(kind, "ok")] > 0, f"no {kind} contract was checked: {statuses}"
    # Every kind is enforced in full, the secrets' account included (each namespace's
    # SecretStore assumes a reader role in the account holding its secrets).
    assert all(contracts.STRICT[kind] == (True, True) for kind in KINDS)
    assert not [link.message for link in found if link.status != "ok"]


def test_the_strictness_table_names_every_kind_once() -> None:
    assert sorted(contracts.STRICT) == sorted(KINDS) == sorted(contracts.PRODUCERS)


def test_validate_runs_the_contract_check(companyos: Any, repo: Path) -> None:
    assert companyos("validate", cwd=repo).code == 0
    edit(repo / "catalog/addons/argo-rollouts.yaml", "  - argoproj.io/Rollout\n", "")
    result = companyos("validate", cwd=repo)
    assert result.code == 2 and "crd_kind 'argoproj.io/Rollout'" in result.err


# --- planted broken contracts --------------------------------------------------------------------


def test_an_external_secret_key_with_no_secret(companyos: Any, repo: Path) -> None:
    producers = repo / "templates/terraform/_producers.tf.j2"
    edit(producers, "{% for sec in r.secrets %}", '{% for sec in r.secrets if sec.kind != "app" %}')
    lines = broken(companyos, repo, "consumes secret 'companyos/dev/acme/api/stripe' in dev")
    location = lines[0].split(": ", 1)[0]
    assert location.startswith("catalog/services/api.yaml:")
    assert "key:" in line_of(repo, location)  # the SecretRef's key line
    assert "rendered/helm/dev/acme/api.yaml consumes" in lines[0] and "aws_secretsmanager_secret" in lines[0]


def test_a_kind_with_no_add_on(companyos: Any, repo: Path) -> None:
    edit(repo / "catalog/addons/argo-rollouts.yaml", "  - argoproj.io/AnalysisTemplate\n", "")
    lines = broken(companyos, repo, "consumes crd_kind 'argoproj.io/AnalysisTemplate'")
    assert all("rendered/argocd/" in line and "/rollouts/" in line for line in lines)
    assert "exactly one add-on listing it in provides_crds" in lines[0]
    assert "canary" in line_of(repo, lines[0].split(": ", 1)[0])  # the service's canary block


def test_an_irsa_trust_naming_the_wrong_service_account(monkeypatch: pytest.MonkeyPatch, repo: Path) -> None:
    original = terraform._tenant

    def wrong_subject(*args: Any) -> terraform.Root:
        root = original(*args)
        if root.tenant == "acme" and root.env.name == "dev":
            root.irsa[0]["subject"] = root.irsa[0]["subject"] + "-typo"
        return root

    monkeypatch.setattr(terraform, "_tenant", wrong_subject)
    with pytest.raises(CatalogErrors) as raised:
        pipeline.build(repo, jobs=1)
    messages = [str(e) for e in raised.value.errors]
    mismatch = [m for m in messages if "its trust must name exactly that namespace:serviceaccount" in m]
    assert len(mismatch) == 1, messages
    assert "rendered/helm/dev/acme/" in mismatch[0] and "-typo (rendered/terraform/dev/tenant-acme/main.tf)" in mismatch[0]
    assert mismatch[0].startswith("tenants/acme.yaml:")
    assert any("consumes service_account 'tenant-acme:" in m and "-typo'" in m for m in messages)


def test_a_host_with_no_record(companyos: Any, repo: Path) -> None:
    blocks = repo / "templates/terraform/_blocks.tf.j2"
    text = blocks.read_text(encoding="utf-8")
    start = text.index('resource "aws_route53_record" "edge" {')
    end = text.index("{% endmacro %}", start)
    blocks.write_text(text[:start] + text[end:], encoding="utf-8")
    lines = broken(companyos, repo, "consumes dns_name 'api.acme.")
    assert "no rendered file provides it" in lines[0] and "Route 53 record" in lines[0]
    assert "ingress" in line_of(repo, lines[0].split(": ", 1)[0])


def test_a_missing_remote_state_output(companyos: Any, repo: Path) -> None:
    outputs = repo / "templates/terraform/shared/outputs.tf.j2"
    text = outputs.read_text(encoding="utf-8")
    outputs.write_text(re.sub(r'output "zone_id" \{.*?\n\}\n', "", text, count=1, flags=re.DOTALL), encoding="utf-8")
    lines = broken(companyos, repo, "consumes terraform_output 'rendered/terraform/dev/shared:zone_id'")
    assert any("rendered/terraform/dev/tenant-" in line for line in lines)
    assert 'output "..." block' in lines[0]


# --- consumer limits ----------------------------------------------------------------------------


def test_an_oversized_add_on_application_fails_at_its_values(sample: pipeline.Build) -> None:
    """Add-ons are applied server-side (the bootstrap Application), so only the API server's
    own object limit binds them. A catalog file holds at most 1 MB, so the oversized
    Application is planted in the render itself and blamed on the add-on's catalog line."""
    env = sample.model.environments[0].name
    path = f"rendered/argocd/{env}/addons.yaml"
    docs = [d for d in yaml.safe_load_all(sample.result.files[path]) if d]
    app = next(d for d in docs if d["kind"] == "Application" and d["metadata"]["name"].endswith("metrics-server"))
    app["spec"]["source"]["helm"]["valuesObject"]["padding"] = "x" * (1600 * 1024)
    files = {**sample.result.files, path: yaml.safe_dump_all(docs).encode()}
    sources = {p: e["sources"] for p, e in sample.result.manifest["files"].items()}
    errors = [e for e in limits.check(sample.model, files, sources, sample.result.declared) if "metrics-server" in e.message]
    assert errors and "the API server accepts at most" in errors[0].message
    assert errors[0].location.path == "catalog/addons/metrics-server.yaml"


def test_names_and_labels_over_their_limits(sample: pipeline.Build) -> None:
    path = "rendered/argocd/dev/namespaces/acme.yaml"
    docs = [d for d in yaml.safe_load_all(sample.result.files[path]) if d]
    namespace = next(d for d in docs if d["kind"] == "Namespace")
    namespace["metadata"]["name"] = "n" * 64
    namespace["metadata"]["labels"]["companyos.io/tenant"] = "acme"
    files = dict(sample.result.files)
    files[path] = yaml.safe_dump_all(docs).encode()
    sources = {p: e["sources"] for p, e in sample.result.manifest["files"].items()}
    errors = limits.check(sample.model, files, sources, sample.result.declared)
    assert [str(e) for e in errors] == [
        f"{sample.model.catalog.tenants['acme'].locate('name', key=True)}: {path}: Namespace {'n' * 64}: name is 64 characters; a Namespace name may have at most 63"
    ]


def test_a_static_matrix_over_256_jobs(sample: pipeline.Build) -> None:
    workflow = {"jobs": {"drill": {"strategy": {"matrix": {"include": [{"n": i} for i in range(257)]}}}}}
    files = {**sample.result.files, ".github/workflows/big.yml": yaml.safe_dump(workflow).encode()}
    errors = limits.check(sample.model, files, {".github/workflows/big.yml": ["tenants/acme.yaml"]}, ())
    assert [e.message for e in errors] == [".github/workflows/big.yml: job drill's matrix has 257 jobs; GitHub runs at most 256"]
    assert errors[0].location.path == "tenants/acme.yaml"


def test_a_large_applicationset_is_accepted_because_the_root_application_applies_server_side(sample):
    """At about 500 tenants the ApplicationSet passes the 256 KiB of client-side apply's
    last-applied annotation: the bootstrap Application syncs it with ServerSideApply=true,
    and without that option the same object is an error."""
    from generator.output import limits

    env = sample.model.environments[0].name
    path = f"rendered/argocd/{env}/applicationsets.yaml"
    doc = yaml.safe_load(sample.result.files[path].decode())
    doc["metadata"]["annotations"] = {"padding": "x" * 300_000}
    big = {path: yaml.safe_dump(doc).encode()}
    bootstrap = f"rendered/argocd/{env}/bootstrap.yaml"
    files = {**big, bootstrap: sample.result.files[bootstrap]}
    sources = {path: ["tenants/acme.yaml"], bootstrap: []}
    errors = limits.check(sample.model, files, sources, [])
    assert not [e for e in errors if "client-side apply" in e.message]
    without = sample.result.files[bootstrap].replace(b"ServerSideApply=true", b"Validate=true")
    errors = limits.check(sample.model, {**big, bootstrap: without}, sources, [])
    assert [e for e in errors if "client-side apply" in e.message and path in e.message]


# --- the set-based check is the one-by-one judge, only faster ------------------------------------


def _judged_one_by_one(declared: list[contracts.Declared]) -> list[Any]:
    """What :func:`contracts.check` must return: every consumer judged by :func:`contracts.links`."""
    broken = contracts.links(declared, broken_only=True)
    return sorted({CatalogError(link.location, link.message) for link in broken if link.strict and link.status != "ok"})


def _consumed_key(declared: list[contracts.Declared], kind: str) -> tuple[str, str, str]:
    return next((c.kind, c.scope, c.name) for _, _, consumes, _ in declared for c in consumes if c.kind == kind)


def _providers(declared: list[contracts.Declared], key: tuple[str, str, str], change: Any) -> list[contracts.Declared]:
    """``declared`` with every producer of ``key`` replaced by ``change(contract)``."""
    return [
        (path, tuple(x for c in provides for x in (change(c) if (c.kind, c.scope, c.name) == key else [c])), consumes, source)
        for path, provides, consumes, source in declared
    ]


def _consumers(declared: list[contracts.Declared], kind: str, change: Any) -> list[contracts.Declared]:
    """``declared`` with the first consumer of ``kind`` replaced by ``change(contract)``."""
    out, done = [], False
    for path, provides, consumes, source in declared:
        if not done and any(c.kind == kind for c in consumes):
            at = next(i for i, c in enumerate(consumes) if c.kind == kind)
            consumes, done = (*consumes[:at], change(consumes[at]), *consumes[at + 1 :]), True
        out.append((path, provides, consumes, source))
    return out


def _wildcard_consumer(declared: list[contracts.Declared], *, admitted: bool) -> list[contracts.Declared]:
    """A consumer of some kind from a project whose whitelist is ``*/*`` (in its scope, or not)."""
    wild = next(c for _, provides, _, _ in declared for c in provides if c.kind == "argocd_kind" and c.name.endswith(":*/*"))
    project = wild.name.split(":", 1)[0]
    extra = contracts.Contract("argocd_kind", f"{project}:example.com/Anything", wild.scope if admitted else "elsewhere")
    path, provides, consumes, source = declared[0]
    return [(path, provides, (*consumes, extra), source), *declared[1:]]


#: Planted breaks (each must fail) and changes that must not.
PLANTS: dict[str, tuple[Any, bool | None]] = {
    "a namespace nobody provides": (lambda d: _providers(d, _consumed_key(d, "namespace"), lambda c: []), True),
    "a detail mismatch": (lambda d: _consumers(d, "iam_role", lambda c: c._replace(detail="tenant-x:other")), True),
    "a CRD kind two add-ons provide": (
        lambda d: _providers(d, _consumed_key(d, "crd_kind"), lambda c: [c, c._replace(detail="another-addon")]),
        True,
    ),
    "an unknown Argo CD project": (lambda d: _consumers(d, "argocd_kind", lambda c: c._replace(name="nobody-dev:/ConfigMap")), True),
    "a consumer without detail": (lambda d: _consumers(d, "secret", lambda c: c._replace(detail="")), False),
    "a kind the project's wildcard admits": (lambda d: _wildcard_consumer(d, admitted=True), False),
    "a kind in another scope than the project's wildcard": (lambda d: _wildcard_consumer(d, admitted=False), True),
    "the sample": (lambda d: d, False),
}


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_the_set_based_check_finds_exactly_what_judging_each_consumer_finds(sample: pipeline.Build, name: str) -> None:
    plant, breaks = PLANTS[name]
    declared = plant(list(sample.result.declared))
    expected = _judged_one_by_one(declared)
    assert contracts.check(declared) == expected
    if breaks is not None:
        assert bool(expected) is breaks, expected


# --- unit by unit: the same errors, one unit's contracts held at a time -------------------------


def _in_units(
    sample: pipeline.Build, declared: list[contracts.Declared]
) -> tuple[list[contracts.Declared], list[list[contracts.Declared]]]:
    """``declared`` as (shared: the global unit's files and acme's, each other tenant's files)."""
    unit = {path: entry.get("tenant") for path, entry in sample.result.manifest["files"].items()}
    groups: dict[str, list[contracts.Declared]] = {}
    for item in declared:
        groups.setdefault(unit.get(item[0]) or "", []).append(item)
    shared = [*groups.pop("", []), *groups.pop("acme", [])]
    return shared, list(groups.values())


def _by_unit(shared: list[contracts.Declared], groups: list[list[contracts.Declared]]) -> tuple[list[CatalogError], int]:
    """:func:`contracts.check_by_unit`'s errors, and how many passes it made over the units."""
    passes: list[int] = []

    def units() -> Any:
        passes.append(1)
        return (iter(group) for group in groups)

    return contracts.check_by_unit(shared, units), len(passes)


def _across_tenants(sample: pipeline.Build, declared: list[contracts.Declared], *, answered: bool) -> list[contracts.Declared]:
    """One tenant's file consumes what only another tenant's file provides (or, not
    ``answered``, the same with a detail no one gives)."""
    unit = {path: entry.get("tenant") for path, entry in sample.result.manifest["files"].items()}
    tenants = sorted({t for t in unit.values() if t not in (None, "acme")})
    theirs = next(c for path, provides, _, _ in declared if unit[path] == tenants[1] for c in provides if c.detail)
    wanted = theirs._replace(at=None) if answered else theirs._replace(detail="nobody-gives-this", at=None)
    at = next(i for i, d in enumerate(declared) if unit[d[0]] == tenants[0])
    path, provides, consumes, source = declared[at]
    return [*declared[:at], (path, provides, (*consumes, wanted), source), *declared[at + 1 :]]


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_the_unit_by_unit_check_finds_exactly_what_the_fleet_check_finds(sample: pipeline.Build, name: str) -> None:
    plant, breaks = PLANTS[name]
    declared = plant(list(sample.result.declared))
    expected = contracts.check(sorted(declared, key=lambda d: d[0]))
    assert _by_unit(*_in_units(sample, declared))[0] == expected
    assert _by_unit([], [declared])[0] == expected  # one unit, nothing shared
    assert _by_unit([], [[d] for d in declared])[0] == expected  # a unit per file: every answer crosses units
    if breaks is not None:
        assert bool(expected) is breaks, expected


def test_a_fleet_that_passes_is_settled_in_one_pass_without_gathering_it(sample: pipeline.Build) -> None:
    assert _by_unit(*_in_units(sample, list(sample.result.declared))) == ([], 1)


@pytest.mark.parametrize("answered", [True, False])
def test_a_consumer_only_another_tenant_answers_is_looked_up_in_a_second_pass(sample: pipeline.Build, answered: bool) -> None:
    declared = _across_tenants(sample, list(sample.result.declared), answered=answered)
    expected = contracts.check(sorted(declared, key=lambda d: d[0]))
    assert bool(expected) is not answered
    found, passes = _by_unit(*_in_units(sample, declared))
    assert found == expected
    assert passes == (2 if answered else 3)  # not answered: the fleet is gathered to name the break


# --- the incremental proof: only what changed is judged, and it never hides a break ---------------

#: The tenant rendered again in these cases (with the global unit); every other tenant is reused.
CHANGED = "acme"


def _split(sample: pipeline.Build) -> tuple[list[contracts.Declared], list[contracts.Declared]]:
    """The sample's files as (rendered again: global and CHANGED, reused: every other tenant)."""
    unit = {path: entry.get("tenant") for path, entry in sample.result.manifest["files"].items()}
    declared = list(sample.result.declared)
    return [d for d in declared if unit[d[0]] in (None, CHANGED)], [d for d in declared if unit[d[0]] not in (None, CHANGED)]


def _reused_key(reused: list[contracts.Declared], new: list[contracts.Declared], kind: str) -> tuple[str, str, str]:
    """A key of ``kind`` a reused file consumes and only the rendered-again files provide."""
    own = {(c.kind, c.scope, c.name) for _, provides, _, _ in reused for c in provides}
    offered = {(c.kind, c.scope, c.name) for _, provides, _, _ in new for c in provides}
    return next(
        (c.kind, c.scope, c.name)
        for _, _, consumes, _ in reused
        for c in consumes
        if c.kind == kind and (c.kind, c.scope, c.name) in offered - own
    )


def _add(declared: list[contracts.Declared], provides: tuple[Any, ...] = (), consumes: tuple[Any, ...] = ()) -> list[contracts.Declared]:
    path, mine, theirs, source = declared[0]
    return [(path, (*mine, *provides), (*theirs, *consumes), source), *declared[1:]]


def _only_reused_offer(reused: list[contracts.Declared], new: list[contracts.Declared]) -> contracts.Contract:
    """A contract only a reused file provides (the consumer of it asks with its detail)."""
    offered = {(c.kind, c.scope, c.name) for _, provides, _, _ in new for c in provides}
    return next(c for _, provides, _, _ in reused for c in provides if (c.kind, c.scope, c.name) not in offered and c.detail)


THING = contracts.Contract("crd_kind", "example.io/Thing", "dev", "addon-a")

#: name -> (change to the rendered-again files, change to the reused files, the proof may hold,
#: the fleet is broken). The proof holding on a broken fleet is the one outcome that must never occur.
DELTAS: dict[str, tuple[Any, Any, bool, bool]] = {
    "nothing changed": (lambda n, r: n, lambda n, r: r, True, False),
    "a producer a reused file consumes withdrawn": (
        lambda n, r: _providers(n, _reused_key(r, n, "crd_kind"), lambda c: []),
        lambda n, r: r,
        False,
        True,
    ),
    "a second owner of a CRD kind reused files consume": (
        lambda n, r: _providers(n, _reused_key(r, n, "crd_kind"), lambda c: [c, c._replace(detail="another-addon")]),
        lambda n, r: r,
        False,
        True,
    ),
    "a new consumer nothing answers": (
        lambda n, r: _add(n, consumes=(contracts.Contract("secret", "companyos/dev/nobody/x", "dev", "role"),)),
        lambda n, r: r,
        False,
        True,
    ),
    "a new producer": (
        lambda n, r: _add(n, provides=(contracts.Contract("secret", "companyos/dev/extra/x", "dev", "role"),)),
        lambda n, r: r,
        True,
        False,
    ),
    "a consumer only a reused file answers, new": (
        lambda n, r: _add(n, consumes=(_only_reused_offer(r, n)._replace(at=None),)),
        lambda n, r: r,
        False,  # not proven (it was not there before): the full check decides
        False,
    ),
    "a CRD kind no one used, owned twice, now used": (
        lambda n, r: _add(_add(n, provides=(THING,)), consumes=(THING._replace(detail=""),)),
        lambda n, r: _add(r, provides=(THING._replace(detail="addon-b"),)),
        False,
        True,
    ),
}


@pytest.mark.parametrize("name", sorted(DELTAS))
def test_the_incremental_proof_never_passes_a_broken_fleet(sample: pipeline.Build, name: str) -> None:
    """``contracts.unchanged`` (the old fleet is the sample, which passes) holds only where
    the full check over the new fleet finds nothing, and holds for the ordinary changes."""
    new_change, reused_change, provable, breaks = DELTAS[name]
    old, reused = _split(sample)
    reused = reused_change(old, reused)
    if name.startswith("a CRD kind no one used"):
        old = _add(old, provides=(THING,))  # the old fleet had both owners and no consumer: it passed
    assert not contracts.check([*old, *reused])
    new = new_change(old, reused)
    verdict = contracts.check([*new, *reused])
    assert bool(verdict) is breaks, verdict
    proven = contracts.unchanged(new, old, reused)
    assert proven is provable
    assert not (proven and verdict)


def test_a_consumer_the_old_fleet_had_is_proven_by_the_reused_producer(sample: pipeline.Build) -> None:
    """The rendered-again side keeps consuming what only a reused file provides (the global
    unit's CI role trusting a regulated tenant's failover role, in the sample)."""
    old, reused = _split(sample)
    needs = {c for _, _, consumes, _ in old for c in consumes}
    offered = {(c.kind, c.scope, c.name, c.detail) for _, provides, _, _ in old for c in provides}
    across = [c for c in needs if (c.kind, c.scope, c.name, c.detail) not in offered]
    assert any(c.kind == "iam_role" for c in across), "the sample has no consumer answered by a reused unit"
    assert contracts.unchanged(old, old, reused)
