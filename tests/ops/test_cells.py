"""Cells: capacity and pins checked at load, stable assignment by ``allocate``, explicit
moves by ``move-tenant`` with a migration plan, and the address plan's headroom.

Every test plants the fault (or the move) in a scratch copy of the repository and runs the
real CLI; errors must be ``path:line:col`` lines, exit 2, and nothing on disk changed.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from helpers.catalog_edit import edit_yaml
from helpers.repo import snapshot

LOCATED = re.compile(r"^(?P<path>[\w./-]+):(?P<line>\d+):(?P<col>\d+): ")


def two_cells(repo: Path, env: str = "prod", blue: int = 3, green: int = 3) -> None:
    edit_yaml(
        repo / f"environments/{env}.yaml",
        lambda d: d.__setitem__("cells", [{"name": "blue", "max_tenants": blue}, {"name": "green", "max_tenants": green}]),
    )


def recorded(repo: Path, env: str = "prod") -> dict[str, str]:
    data = yaml.safe_load((repo / "catalog/networks.yaml").read_text(encoding="utf-8"))
    return dict(data["environments"][env].get("cells") or {})


def located(err: str) -> list[tuple[str, int, str]]:
    out = []
    for line in err.splitlines():
        m = LOCATED.match(line)
        if m:
            out.append((m["path"], int(m["line"]), line))
    return out


def test_single_cell_environments_need_no_record(repo, companyos):
    result = companyos("validate", cwd=repo)
    assert result.code == 0, result.err
    assert recorded(repo) == {}


def test_allocate_records_each_tenant_in_the_first_cell_with_room_and_never_moves_one(repo, companyos):
    two_cells(repo)
    missing = companyos("validate", cwd=repo)
    assert missing.code == 2
    assert any("has no cell in 'prod'" in line for _, _, line in located(missing.err))
    result = companyos("allocate", cwd=repo)
    assert result.code == 0, result.err
    cells = recorded(repo)
    assert cells == {"acme": "blue", "globex": "blue", "hooli": "blue", "initech": "green", "umbrella": "green"}
    assert list(cells) == sorted(cells)  # sorted records: onboarding branches insert at different lines
    # a second run changes nothing; a manual record elsewhere is kept, not "rebalanced"
    before = (repo / "catalog/networks.yaml").read_bytes()
    assert companyos("allocate", cwd=repo).code == 0
    assert (repo / "catalog/networks.yaml").read_bytes() == before
    assert companyos("validate", cwd=repo).code == 0


def test_cell_over_capacity_is_a_located_error_and_nothing_is_written(repo, companyos):
    two_cells(repo)
    assert companyos("allocate", cwd=repo).code == 0
    two_cells(repo, blue=2)  # three tenants are recorded in blue
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2
    errors = located(result.err)
    assert [(p, line) for p, line, msg in errors if "over capacity" in msg] == [
        ("environments/prod.yaml", _line_of(repo, "prod", "max_tenants: 2"))
    ]
    assert "cell 'blue' of 'prod' is over capacity: 3 tenants, max_tenants 2" in result.err
    assert "Traceback" not in result.err
    assert snapshot(repo) == before


def test_tenant_pinned_to_an_unknown_cell_is_a_located_error(repo, companyos):
    two_cells(repo)
    assert companyos("allocate", cwd=repo).code == 0
    edit_yaml(repo / "catalog/networks.yaml", lambda d: d["environments"]["prod"]["cells"].__setitem__("hooli", "purple"))
    before = snapshot(repo)
    result = companyos("check", cwd=repo)
    assert result.code == 2
    [(path, line, msg)] = [e for e in located(result.err) if "unknown cell" in e[2]]
    assert path == "catalog/networks.yaml"
    assert (repo / path).read_text().splitlines()[line - 1].strip() == "hooli: purple"
    assert "tenant 'hooli' is pinned to unknown cell 'purple' in 'prod' (cells: blue, green)" in msg
    assert snapshot(repo) == before


def test_no_cell_with_room_fails_allocate_without_writing(repo, companyos):
    two_cells(repo, blue=2, green=2)  # five prod tenants, room for four
    before = snapshot(repo)
    result = companyos("allocate", cwd=repo)
    assert result.code == 2
    assert "no cell of 'prod' has room for tenant 'umbrella'" in result.err
    assert located(result.err)[0][0] == "environments/prod.yaml"
    assert snapshot(repo) == before


def test_move_tenant_prints_the_migration_plan_and_records_one_line(repo, companyos):
    two_cells(repo)
    assert companyos("allocate", cwd=repo).code == 0
    networks_before = (repo / "catalog/networks.yaml").read_text().splitlines()
    dry = companyos("move-tenant", "hooli", "--env", "prod", "--cell", "green", "--dry-run", cwd=repo)
    assert dry.code == 0, dry.err
    assert (repo / "catalog/networks.yaml").read_text().splitlines() == networks_before
    plan = dry.out
    assert "from cell blue (companyos-prod) to cell green (companyos-prod-green)" in plan
    assert "removed  rendered/argocd/prod/cells/blue/hooli.json" in plan
    assert "added    rendered/argocd/prod/cells/green/hooli.json" in plan
    assert "changed  rendered/argocd/prod/tenants/hooli.yaml" in plan
    assert "prod-hooli-api" in plan
    # only hooli's files change: no other tenant's file, no fleet-wide list
    files = [line.split()[-1] for line in plan.splitlines() if line.strip().startswith(("added", "removed", "changed"))]
    assert files and all("hooli" in f for f in files), files
    moved = companyos("move-tenant", "hooli", "--env", "prod", "--cell", "green", cwd=repo)
    assert moved.code == 0, moved.err
    after = (repo / "catalog/networks.yaml").read_text().splitlines()
    assert [(a, b) for a, b in zip(networks_before, after, strict=True) if a != b] == [("      hooli: blue", "      hooli: green")]
    assert companyos("render", cwd=repo).code == 0
    assert (repo / "rendered/argocd/prod/cells/green/hooli.json").is_file()
    assert not (repo / "rendered/argocd/prod/cells/blue/hooli.json").exists()
    assert companyos("check", cwd=repo).code == 0


def test_move_tenant_refuses_a_full_cell_an_unknown_cell_and_a_no_op(repo, companyos):
    two_cells(repo, blue=3, green=2)
    assert companyos("allocate", cwd=repo).code == 0
    before = snapshot(repo)
    full = companyos("move-tenant", "hooli", "--env", "prod", "--cell", "green", cwd=repo)
    assert full.code == 2
    assert "cell 'green' of 'prod' is over capacity: 3 tenants, max_tenants 2" in full.err
    assert located(full.err)[0][0] == "environments/prod.yaml"
    unknown = companyos("move-tenant", "hooli", "--env", "prod", "--cell", "purple", cwd=repo)
    assert unknown.code == 2 and "unknown cell 'purple' in 'prod' (cells: blue, green)" in unknown.err
    same = companyos("move-tenant", "hooli", "--env", "prod", "--cell", "blue", cwd=repo)
    assert same.code == 2 and "already runs in cell 'blue'" in same.err
    assert snapshot(repo) == before


def test_allocate_reports_how_many_dedicated_vpcs_remain(repo, companyos):
    result = companyos("allocate", cwd=repo)
    assert result.code == 0, result.err
    # dev: /12 primary = 256 /20 blocks; shared /16 takes 16, pool-standard and tenant-acme one each
    assert "dev: room for 238 more dedicated /20 VPCs in 10.0.0.0/12" in result.out
    # a larger primary space (and DR space) gives room at once, without moving any VPC
    edit_yaml(
        repo / "catalog/networks.yaml",
        lambda d: d["environments"]["dev"].update({"primary": "10.0.0.0/11", "dr": "10.128.0.0/11"}),
    )
    grown = companyos("allocate", cwd=repo)
    assert grown.code == 0, grown.err
    assert "dev: room for 494 more dedicated /20 VPCs in 10.0.0.0/11" in grown.out


def _line_of(repo: Path, env: str, text: str) -> int:
    lines = (repo / f"environments/{env}.yaml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.strip() == text)
