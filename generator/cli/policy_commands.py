"""``policy list``: the guardrail rules."""

from __future__ import annotations

import json

import typer

from generator.cli.common import FormatOption


def policy_list(format: FormatOption = "text") -> None:
    """Print every rule: id, name and one-line rationale."""
    from generator.policy.evaluate import describe_rules

    rules = describe_rules()
    if format == "json":
        typer.echo(json.dumps(rules, indent=2))
    else:
        for item in rules:
            typer.echo(f"{item['id']}  {item['name']:<28} {item['rationale']}")
