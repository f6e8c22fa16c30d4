"""The ``companyos`` command line: parsing and printing only, over the library API."""

from generator.cli.main import app, main

__all__ = ["app", "main"]
