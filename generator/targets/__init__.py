"""All output kinds, in the order they render. One module per kind."""

from __future__ import annotations

from generator.targets import argocd, helm, migrations, terraform, workflows

TARGETS = (helm, argocd, migrations, terraform, workflows,)
