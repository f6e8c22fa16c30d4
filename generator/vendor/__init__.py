"""Upstream-derived validation data vendored into the package.

CRD JSON Schemas, the stakater ``application`` chart's values schema, Terraform module
and provider data, GitHub Action pins and the validator scripts are copied here byte for
byte from the team's upstream schema folder, so a checkout (and an installed package) is
self-contained; provenance is in ``README.md``
and ``python -m generator.vendor.refresh`` re-copies them. Nothing in this folder is
authored by the project.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: This folder, as a real filesystem path (the package is never imported from a zip).
VENDOR_DIR: Path = Path(str(files(__package__ or __name__)))


def crd_schema_dir() -> Path:
    """``<group>_<version>_<Kind>[.loose].json`` JSON Schemas made from upstream CRDs."""
    return VENDOR_DIR / "k8s-crds"


def helm_values_schema() -> Path:
    """The stakater ``application`` chart 9.2.0 ``values.schema.json`` (its ``values.yaml`` sits beside it)."""
    return VENDOR_DIR / "helm" / "application-9.2.0.values.schema.json"


def terraform_data_dir() -> Path:
    """``terraform-aws-modules-inputs.json`` and ``aws-provider-resources.json``."""
    return VENDOR_DIR / "terraform"


def action_pins() -> Path:
    """``github-actions-pins.json``: GitHub Action tags, commit SHAs and inputs."""
    return VENDOR_DIR / "github-actions-pins.json"


def tools_dir() -> Path:
    """The validator scripts (``validate_tf.py``, ``validate_k8s.py``, ``crd_to_jsonschema.py``); run, not imported by the library."""
    return VENDOR_DIR / "tools"
