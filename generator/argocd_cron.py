"""A checker for the 5-field cron expressions Argo CD sync windows use.

Argo CD parses ``syncWindows[].schedule`` with robfig/cron's standard parser: five fields
(minute, hour, day of month, month, day of week), each ``*``, ``?`` (day fields), a value,
a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a comma list of those; month and weekday
names (``JAN``, ``MON``) and the ``@daily``-style descriptors are accepted too. A schedule
Argo CD cannot parse makes the AppProject invalid at sync time, in production, inside the
change window -- so we refuse it at render time instead. Only syntax and ranges are
checked; no dependency is needed for that.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    #: ``?`` means "any" in the day fields only.
    question: bool = False


FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31, question=True),
    _Field("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    _Field("day of week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), question=True),
)

DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a valid 5-field cron schedule, or None when it is."""
    text = expression.strip()
    if text.lower() in DESCRIPTORS:
        return None
    parts = text.split()
    if len(parts) != len(FIELDS):
        return f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
    for part, field in zip(parts, FIELDS):
        problem = _field_problem(part, field)
        if problem:
            return f"{field.name} field '{part}': {problem}"
    return None


def _field_problem(part: str, field: _Field) -> str | None:
    if part == "?" and field.question:
        return None
    for item in part.split(","):
        if not item:
            return "empty list item"
        base, _, step = item.partition("/")
        if "/" in item:
            if not step.isdigit() or int(step) < 1:
                return f"step '{step}' must be a positive number"
        if base == "*":
            continue
        low_text, dash, high_text = base.partition("-")
        low = _value(low_text, field)
        if low is None:
            return f"'{low_text}' is not a {field.name} ({_allowed(field)})"
        if dash:
            high = _value(high_text, field)
            if high is None:
                return f"'{high_text}' is not a {field.name} ({_allowed(field)})"
            if high < low:
                return f"range {base} runs backwards"
    return None


def _value(text: str, field: _Field) -> int | None:
    if text.isdigit():
        value = int(text)
        return value if field.low <= value <= field.high else None
    upper = text.upper()
    if upper in field.names:
        return field.names.index(upper) + field.low
    return None


def _allowed(field: _Field) -> str:
    names = f" or {field.names[0]}-{field.names[-1]}" if field.names else ""
    return f"{field.low}-{field.high}{names}"
