"""Byte formats every stage may use: the one emitter of generated files (YAML, JSON, headers)
and the Jinja2 environment. Knows nothing of the catalog.
"""
