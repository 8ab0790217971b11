"""The controllers reach the API server only through the REST client: of the API server's
package they may take the served-resource table (names and scopes), nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CONTROLLERS = Path(__file__).resolve().parents[2] / "impl" / "raftkube" / "controllers"
ALLOWED_FROM_APISERVER = {"raftkube.apiserver.resources"}


@pytest.mark.parametrize("path", sorted(CONTROLLERS.glob("*.py")), ids=lambda p: p.name)
def test_controllers_take_only_the_resource_table_from_the_apiserver(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        for module in modules:
            if module.startswith("raftkube.apiserver"):
                assert module in ALLOWED_FROM_APISERVER, f"{path.name} imports {module}"
