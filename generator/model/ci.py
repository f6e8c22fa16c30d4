"""The shape of CI at scale, in one place: the rendered workflows, the commands that answer
their matrices and the CLI's defaults read these (a module of plain values: the CLI's option
defaults are read without loading the render)."""

from __future__ import annotations

#: GitHub runs at most 256 jobs per matrix; batched matrices stay at or under this.
MAX_JOBS = 256
#: Tenant units one render-check lint job takes (``companyos lint --batch``): a batch of 200
#: took 4 min 41 s on two cores at 10,000 tenants (docs/guardrails.md), besides the job's
#: set-up, and a whole lint of 10,000 tenants is 50 jobs.
LINT_UNITS_PER_JOB = 200
#: The cost gate (``companyos cost --base``): a tenant's monthly estimate may rise this much (percent).
DEFAULT_MAX_INCREASE = 10.0
