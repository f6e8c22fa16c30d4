"""`companyos window-open` (the prod change-window gate of the deploy and terraform
workflows) and the cron rules of change windows, with fixed clocks and the sample catalog."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from generator.catalog import changewindow, spec
from helpers.catalog_edit import edit_yaml
from helpers.repo import REPO

# environments/prod.yaml: "0 8 * * 1-4" for 8h in Europe/Dublin (UTC+0 in winter, UTC+1 in summer).
CASES = [
    ("2026-11-26T08:00:00+00:00", True),  # Thursday 08:00 Dublin (GMT): opens
    ("2026-11-26T15:59:00+00:00", True),  # last minute
    ("2026-11-26T16:00:00+00:00", False),  # closed at 16:00
    ("2026-11-27T10:00:00+00:00", False),  # Friday
    ("2026-11-30T07:59:00+00:00", False),  # Monday, a minute early
    ("2026-07-02T07:00:00+00:00", True),  # Thursday 08:00 Dublin (IST = UTC+1)
    ("2026-07-02T06:30:00+00:00", False),  # 07:30 Dublin in summer
    ("2026-07-02T10:00:00+02:00", True),  # any offset is converted
]


@pytest.mark.parametrize(("at", "is_open"), CASES)
def test_window_open_exit_code_follows_the_prod_window(companyos, at, is_open):
    result = companyos("window-open", "--env", "prod", "--at", at, cwd=REPO)
    assert result.code == (0 if is_open else 1), result.out + result.err
    assert ("is open until" in result.out) == is_open
    if not is_open:
        assert "it next opens" in result.err


def test_environments_without_a_window_are_always_open(companyos):
    result = companyos("window-open", "--env", "dev", "--at", "2026-11-28T03:00:00+00:00", cwd=REPO)
    assert result.code == 0 and "no change window" in result.out


@pytest.mark.parametrize(
    "args", [("--env", "nope"), ("--env", "prod", "--at", "tomorrow"), ("--env", "prod", "--at", "2026-11-26T08:00:00")]
)
def test_bad_arguments_are_usage_errors(companyos, args):
    result = companyos("window-open", *args, cwd=REPO)
    assert result.code == 2 and "Traceback" not in result.err


def test_the_window_comes_from_the_environment_file(repo, companyos):
    edit_yaml(repo / "environments/prod.yaml", lambda d: d["change_window"].__setitem__("schedule", "0 20 * * 5"))
    assert companyos("window-open", "--env", "prod", "--at", "2026-11-27T21:00:00+00:00", cwd=repo).code == 0
    assert companyos("window-open", "--env", "prod", "--at", "2026-11-26T09:00:00+00:00", cwd=repo).code == 1


def test_next_opening_and_cron_rules():
    window = spec.ChangeWindow(schedule="30 22 * * sun", duration="3h", timezone="UTC")
    st = changewindow.state(window, datetime(2026, 11, 30, 0, 15, tzinfo=UTC))  # Monday 00:15, window from Sunday
    assert st.open and st.end == datetime(2026, 11, 30, 1, 30, tzinfo=UTC)
    st = changewindow.state(window, datetime(2026, 11, 30, 2, 0, tzinfo=UTC))
    assert not st.open and st.start == datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    # day-of-month and day-of-week both restricted: either matches (Vixie cron, robfig/cron).
    either = changewindow.parse_cron("0 0 1 * 1")
    assert either.matches_day(datetime(2026, 12, 1).date()) and either.matches_day(datetime(2026, 11, 30).date())
    assert changewindow.parse_cron("@daily") == changewindow.parse_cron("0 0 * * *")
    assert changewindow.parse_cron("0 8 * * 0").weekdays == frozenset({0})
    for bad, why in (
        ("0 8 * *", "5 fields"),
        ("61 8 * * *", "minute field '61'"),
        ("0 8 * * 7", "outside 0-6"),
        ("0 8 * * 5-1", "backwards"),
        ("0 8 * foo *", "month"),
    ):
        with pytest.raises(ValueError, match=why):
            changewindow.parse_cron(bad)
