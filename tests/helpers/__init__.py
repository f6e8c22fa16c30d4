"""Helpers shared by test modules (plain functions and constants; fixtures live in conftest.py).

Test modules import from here, never from each other or from ``conftest``.
"""
