"""The cloud package keeps to its seams: its controllers reach the API server only through the
REST client (of the API server's package they take the resource table, as the controllers
do), and only the cloud's own HTTP server uses the API server's HTTP layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLOUD = Path(__file__).resolve().parents[2] / "impl" / "raftkube" / "cloud"
ALLOWED_FROM_APISERVER = {"raftkube.apiserver.resources"}
HTTP_LAYER = {"raftkube.apiserver.http", "raftkube.apiserver.request"}


def imported_modules(path: Path) -> list[str]:
    modules: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules.append(node.module or "")
    return modules


@pytest.mark.parametrize("path", sorted(CLOUD.glob("*.py")), ids=lambda p: p.name)
def test_cloud_modules_keep_to_their_seams(path: Path) -> None:
    allowed = ALLOWED_FROM_APISERVER | (HTTP_LAYER if path.name == "server.py" else set())
    for module in imported_modules(path):
        if module.startswith("raftkube.apiserver"):
            assert module in allowed, f"{path.name} imports {module}"


@pytest.mark.parametrize(
    "name", ["nodes.py", "routes.py", "services.py", "manager.py", "client.py"]
)
def test_controllers_never_touch_the_clouds_internals(name: str) -> None:
    for module in imported_modules(CLOUD / name):
        assert module not in ("raftkube.cloud.provider", "raftkube.cloud.server"), (
            f"{name} imports {module}: the controllers see the cloud only through its API"
        )
