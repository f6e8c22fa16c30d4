"""Service level objectives as PromQL: SLI error ratios, burn-rate thresholds, rule names.

The PrometheusRule target and the canary AnalysisTemplate both read an SLO; what they must
agree on (the error-ratio expression, the budget, the threshold of a burn-rate factor) is
derived here once, from the resolved settings, so no threshold is typed into a template.
Thresholds are computed in decimal: ``(1 - 99.9/100) * 14.4`` is exactly ``0.0144``.
"""

from __future__ import annotations

import functools
from decimal import Decimal

import promql_parser

from generator.catalog.spec import SloSettings

AVAILABILITY = "availability"
LATENCY = "latency"


def slis(slo: SloSettings) -> tuple[str, ...]:
    """The SLIs a service measures: availability always, latency when enabled."""
    return (AVAILABILITY, LATENCY) if slo.latency.enabled else (AVAILABILITY,)


def objective(slo: SloSettings, sli: str) -> float:
    return slo.availability.objective if sli == AVAILABILITY else slo.latency.objective


def budget(objective_percent: float) -> Decimal:
    """The error budget as a ratio: 99.9 -> 0.001."""
    return (Decimal(100) - Decimal(str(objective_percent))) / Decimal(100)


def threshold(objective_percent: float, factor: float) -> Decimal:
    """The error ratio at which the budget burns ``factor`` times too fast."""
    return budget(objective_percent) * Decimal(str(factor))


def number(value: Decimal) -> str:
    """A PromQL/expr number literal without exponent (``0.0144``, not ``1.44E-2``)."""
    text = format(value.normalize(), "f")
    return text


def scoped(selector: str, matchers: dict[str, str]) -> str:
    """``selector`` with ``matchers`` (label -> exact value) added; values are DNS labels or
    Argo CD argument placeholders, neither of which needs escaping beyond quotes."""
    canonical = _canonical(selector)
    extra = ",".join(f'{label}="{value}"' for label, value in matchers.items())
    if canonical.endswith("}"):
        head, _, inner = canonical[:-1].partition("{")
        inner = inner.strip().rstrip(",")
        return f"{head}{{{inner + ',' if inner else ''}{extra}}}"
    return f"{canonical}{{{extra}}}"


@functools.lru_cache(maxsize=1024)
def _canonical(selector: str) -> str:
    """A selector as the PromQL parser prints it; a few distinct selectors are scoped once per
    service, environment and window (130,000 parses at 1000 tenants), so parse each once."""
    return str(promql_parser.parse(selector).prettify())


def error_ratio(slo: SloSettings, sli: str, matchers: dict[str, str], window: str) -> str:
    """Share of bad events over ``window``: NaN without traffic, no series without metrics."""
    if sli == AVAILABILITY:
        good = scoped(slo.availability.good, matchers)
        total = scoped(slo.availability.total, matchers)
    else:
        # Prometheus 3 normalises classic-histogram `le` labels to float form (0.3, 1.0).
        hist = slo.latency.histogram
        good = scoped(f"{hist}_bucket", {**matchers, "le": repr(float(slo.latency.threshold_seconds))})
        total = scoped(f"{hist}_count", matchers)
    return f"1 - (sum(rate({good}[{window}])) / sum(rate({total}[{window}])))"


def record_name(sli: str, window: str) -> str:
    """Recording-rule series name, Sloth/workbook style: ``slo:availability_error:ratio_rate5m``."""
    return f"slo:{sli}_error:ratio_rate{window}"


def windows(slo: SloSettings) -> list[str]:
    """Every window an alert reads, shortest first (5m, 30m, 1h, 6h, 3d by default)."""
    found = {w for alert in slo.burn_rate_alerts for w in (alert.short_window, alert.long_window)}
    return sorted(found, key=lambda w: promql_parser.parse_duration(w).total_seconds())
