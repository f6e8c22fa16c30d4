"""The policy stage: guardrails over the resolved model, one module per rule family, waivers."""
