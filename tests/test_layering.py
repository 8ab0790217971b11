"""The project's layering rules, checked on the source itself.

``spec/`` is pure: it imports only the standard library, ``attrs`` and itself. ``impl/`` may take
the specification's *vocabulary* (its data types and constants) but never its behaviour: if the
implementation called the spec's transitions, checking one against the other would prove
nothing. ``spec/`` and ``impl/`` never import the simulator.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec" / "raftkube_spec"
IMPL = ROOT / "impl" / "raftkube"

# The shell of the model checker reads a clock and prints; everything else in spec/ may not.
SPEC_SHELLS = {SPEC / "cli.py"}
# Modules that hold nothing but vocabulary, which impl/ may import whole.
VOCABULARY_MODULES = {
    "raftkube_spec.raft.events",
    "raftkube_spec.raft.messages",
    "raftkube_spec.raft.types",
}
IMPURE_MODULES = {"time", "random", "os", "socket", "threading", "subprocess", "io", "datetime"}


def imports(path: Path) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(absolute module, imported names) for every import in ``path``."""
    source_root = ROOT / path.relative_to(ROOT).parts[0]  # spec/, impl/ or fuzz/
    package = ".".join(path.relative_to(source_root).parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            yield module, tuple(alias.name for alias in node.names)


def sources(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


@pytest.mark.parametrize("path", sources(SPEC), ids=lambda p: str(p.relative_to(ROOT)))
def test_spec_imports_only_the_standard_library_attrs_and_itself(path: Path) -> None:
    for module, _ in imports(path):
        top = module.split(".")[0]
        assert top in sys.stdlib_module_names or top in {"attrs", "raftkube_spec"}, (
            f"{path.relative_to(ROOT)} imports {module}"
        )
        if path not in SPEC_SHELLS:
            assert top not in IMPURE_MODULES, f"{path.relative_to(ROOT)} imports {module}"


@pytest.mark.parametrize("path", sources(IMPL), ids=lambda p: str(p.relative_to(ROOT)))
def test_impl_takes_only_vocabulary_from_the_spec(path: Path) -> None:
    for module, names in imports(path):
        top = module.split(".")[0]
        assert top != "raftkube_fuzz", f"{path.relative_to(ROOT)} imports the simulator"
        if top != "raftkube_spec":
            continue
        assert names, f"{path.relative_to(ROOT)} imports the whole module {module}"
        spec_module = importlib.import_module(module)
        for name in names:
            value = getattr(spec_module, name, None)
            if value is None:  # a submodule, as in ``from raftkube_spec.raft import events``
                value = importlib.import_module(f"{module}.{name}")
            if inspect.ismodule(value):
                assert value.__name__ in VOCABULARY_MODULES, (
                    f"{path.relative_to(ROOT)} imports the module {value.__name__}, which "
                    "holds behaviour; import its types by name instead"
                )
                continue
            behaviour = inspect.isfunction(value) or inspect.ismethod(value)
            assert not behaviour, (
                f"{path.relative_to(ROOT)} imports {module}.{name}, which is behaviour, "
                "not vocabulary"
            )


# Clients of the API server (the REST client, the control loops) know it only through HTTP:
# from the server's package they may take the resource table (what exists, where it lives),
# never its handlers, storage or caches, or the checks would be of the server against itself.
API_CLIENT_PACKAGES = tuple(
    IMPL / name
    for name in ("kubeclient", "controllers", "scheduler", "kubelet", "runtime", "cloud", "proxy")
)
API_VOCABULARY = {
    "raftkube.apiserver.resources",
    # The HTTP layer knows nothing of Kubernetes (bytes to a Request, a Response back): the
    # kubelet's log endpoint and the simulated cloud serve their own APIs with it.
    "raftkube.apiserver.http",
    "raftkube.apiserver.request",
    # What a pod requests and what a quantity is are the API's definitions; the scheduler
    # must count exactly as the server validates.
    "raftkube.apiserver.quantity",
    "raftkube.apiserver.kinds.pods",
}


@pytest.mark.parametrize(
    "path",
    [p for folder in API_CLIENT_PACKAGES if folder.exists() for p in sources(folder)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_api_clients_take_only_the_resource_table_from_the_server(path: Path) -> None:
    for module, _ in imports(path):
        if module == "raftkube.apiserver" or module.startswith("raftkube.apiserver."):
            assert module in API_VOCABULARY, f"{path.relative_to(ROOT)} imports {module}"


def test_the_store_knows_nothing_of_kubernetes() -> None:
    """The Raft store and its client are below the API server: none of them imports it."""
    below = [IMPL / d for d in ("raft", "storage", "net", "mvcc", "server", "client", "api")]
    for folder in below:
        for path in sources(folder):
            for module, _ in imports(path):
                assert not module.startswith(("raftkube.apiserver", "raftkube.kubeclient")), (
                    f"{path.relative_to(ROOT)} imports {module}"
                )


TESTS = ROOT / "tests"
# An import of a test package other than the helpers, in code or in a string a test runs in a
# subprocess; and a relative import (of a sibling test module or conftest). Read as text, not
# parsed: parsing every test module would make this check take seconds.
OTHER_TEST_MODULE = re.compile(r"^\s*(?:from|import)\s+tests\.(?!helpers\b)[\w.]+", re.MULTILINE)
RELATIVE_IMPORT = re.compile(r"^\s*from\s+\.+[\w.]*\s+import\b", re.MULTILINE)


def test_tests_share_code_only_through_the_helpers() -> None:
    """A test module imports no other test module or conftest, so running (or deleting) one file
    never depends on another's internals: what tests share lives in ``tests/helpers`` and the
    fixtures are registered once in ``tests/conftest.py``."""
    offences = []
    for path in sources(TESTS):
        text = path.read_text()
        name = path.relative_to(ROOT)
        for match in RELATIVE_IMPORT.finditer(text):
            offences.append(f"{name}: {match.group().strip()} (relative; use tests.helpers)")
        for match in OTHER_TEST_MODULE.finditer(text.replace('"', "\n").replace("'", "\n")):
            offences.append(f"{name}: {match.group().strip()}")
    assert offences == []
