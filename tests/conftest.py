"""Fixtures every test directory may use.

The fixtures' code lives in ``tests/helpers`` beside the classes the tests import (a test module
never imports a conftest or another test module); pytest reads ``pytest_plugins`` only from this
top-level conftest, so the modules that define fixtures are registered here once.
"""

from hypothesis import HealthCheck, settings

# Hypothesis's wall-clock checks (a 200 ms deadline per example, the "input generation is slow"
# health check) measure the machine, not the code: on a shared 2-core machine running a test
# in each core's worker, a collection or a neighbour's burst can hold one draw for seconds.
# The properties are checked all the same; only those two timings are off, for every test here
# (so none turns them off itself).
settings.register_profile("raftkube", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("raftkube")

pytest_plugins = [
    "tests.helpers.api_server",
    "tests.helpers.cloud",
    "tests.helpers.processes",
]
