"""One module per family of policy rules; ``policy/registry.py`` lists them all."""
