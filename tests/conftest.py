"""Fixtures every test directory may use.

The fixtures' code lives in ``tests/helpers`` beside the classes the tests import (a test module
never imports a conftest or another test module); pytest reads ``pytest_plugins`` only from this
top-level conftest, so the modules that define fixtures are registered here once.
"""

pytest_plugins = [
    "tests.helpers.api_server",
    "tests.helpers.cloud",
    "tests.helpers.processes",
]
