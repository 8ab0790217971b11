"""Helpers shared by test modules: harnesses, object builders, polling with a deadline.

A test module never imports another test module or a conftest, only these; the ones that
define fixtures are registered once in ``tests/conftest.py`` (``tests/test_layering.py`` checks
both).
"""
