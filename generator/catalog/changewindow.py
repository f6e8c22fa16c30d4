"""Is an environment's change window open right now?

A window is what ``environments/<env>.yaml`` declares under ``change_window`` and what
Argo CD's ``syncWindows`` use: a five-field cron expression for when it opens, a duration,
and an IANA time zone. The cron fields are matched against the wall clock *in that zone*,
so "08:00 Monday to Thursday in Europe/Dublin" stays 08:00 across daylight saving time.

The deploy and terraform workflows run ``companyos window-open --env prod``, which exits 1
outside the window; keeping the logic here (and not in shell) makes it testable with a
fixed clock. Standard cron rules: ``*``, ``?``, lists, ranges, steps, three-letter names
and ``@daily``-style descriptors; day-of-week runs 0-6 from Sunday, as in robfig/cron (which
Argo CD uses, and which rejects 7); when both day-of-month and day-of-week are restricted a
day matching either one matches (Vixie cron and robfig/cron agree). ``references`` calls
:func:`cron_problem` at load time, so a schedule Argo CD could not parse never reaches an
AppProject.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from generator.catalog import spec

_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

#: (name, lowest, highest, names) per cron field, in order.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow


def parse_cron(expr: str) -> Cron:
    """Parse a five-field cron expression; ValueError says which field is wrong and why."""
    parts = _DESCRIPTORS.get(expr.strip().lower(), expr).split()
    parts = [("*" if p == "?" and i in (2, 4) else p) for i, p in enumerate(parts)]
    if len(parts) != 5:
        raise ValueError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
    sets = []
    for part, (name, low, high, names) in zip(parts, _FIELDS, strict=False):
        try:
            sets.append(_field(part, low, high, names))
        except ValueError as exc:
            raise ValueError(f"{name} field '{part}': {exc}") from None
    weekdays = sets[4]
    return Cron(
        minutes=sets[0],
        hours=sets[1],
        days=sets[2],
        months=sets[3],
        weekdays=weekdays,
        days_restricted=parts[2] != "*",
        weekdays_restricted=parts[4] != "*",
    )


def cron_problem(expr: str) -> str | None:
    """Why ``expr`` is not a cron schedule Argo CD accepts, or None when it is."""
    try:
        parse_cron(expr)
    except ValueError as exc:
        return str(exc)
    return None


def _field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
        except ValueError:
            raise ValueError(f"step '{step_text}' must be a positive number") from None
        if step < 1:
            raise ValueError(f"step '{step_text}' must be a positive number")
        if base == "*":
            start, end = low, high
        else:
            first, dash, last = base.partition("-")
            start = _value(first, low, high, names)
            end = _value(last, low, high, names) if dash else (high if step_text else start)
            if end < start:
                raise ValueError(f"range {base} runs backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, low: int, high: int, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise ValueError(f"'{text}' is not a number from {low}-{high}" + (f" or one of {', '.join(names)}" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{value} is outside {low}-{high}")
    return value


def parse_duration(text: str) -> timedelta:
    """``30m``, ``8h``, ``90s`` (the ``spec.Duration`` pattern)."""
    unit = {"s": "seconds", "m": "minutes", "h": "hours"}[text[-1]]
    return timedelta(**{unit: int(text[:-1])})


@dataclass(frozen=True)
class WindowState:
    open: bool
    #: Start of the window that contains ``now`` (open) or of the next one (closed).
    start: datetime | None
    end: datetime | None


def state(window: spec.ChangeWindow, now: datetime, horizon_days: int = 400) -> WindowState:
    """Whether ``window`` is open at ``now`` (timezone-aware), and when it opens/closes."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cron = parse_cron(window.schedule)
    length = parse_duration(window.duration)
    zone = ZoneInfo(window.timezone)
    local_now = now.astimezone(zone)
    back = length.days + 2
    latest_open: datetime | None = None
    for start in _starts(cron, zone, local_now.date() - timedelta(days=back), back + 1):
        if start <= now < start + length:
            latest_open = start
    if latest_open is not None:
        return WindowState(True, latest_open, latest_open + length)
    for start in _starts(cron, zone, local_now.date(), horizon_days):
        if start > now:
            return WindowState(False, start, start + length)
    return WindowState(False, None, None)


def _starts(cron: Cron, zone: ZoneInfo, first_day: date, days: int) -> Iterator[datetime]:
    """Every start time the cron produces on ``days`` consecutive local days, in order."""
    for offset in range(days + 1):
        day = first_day + timedelta(days=offset)
        if not cron.matches_day(day):
            continue
        for hour in sorted(cron.hours):
            for minute in sorted(cron.minutes):
                yield datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC)


def is_open(env: spec.Environment, now: datetime) -> WindowState:
    """An environment without a change window is always open."""
    if env.change_window is None:
        return WindowState(True, None, None)
    return state(env.change_window, now)
