"""kubectl 1.32, as it is, against the API server: the everyday commands a user types.

kubectl runs as a subprocess against the in-process server (fixture ``api``); each test checks
what kubectl prints, which is what a user relies on. Skipped where kubectl is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import trio

from tests.helpers.api_server import TOKEN, APIHarness

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl is not installed on this machine"
)

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: python:3
        command: ["python3", "-m", "http.server", "8080"]
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
"""


async def kubectl(
    api: APIHarness, *args: str, check: bool = True, kubeconfig: Path | None = None
) -> tuple[int, str, str]:
    result = await trio.run_process(
        ["kubectl", "--kubeconfig", str(kubeconfig or api.kubeconfig), *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    out, err = result.stdout.decode(), result.stderr.decode()
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {err}")
    return result.returncode, out, err


@pytest.mark.trio
async def test_get_namespaces_and_version(api: APIHarness) -> None:
    with trio.fail_after(30):
        _, out, _ = await kubectl(api, "get", "ns")
        lines = out.splitlines()
        assert lines[0].split() == ["NAME", "STATUS", "AGE"]
        names = {line.split()[0]: line.split()[1] for line in lines[1:]}
        assert names == {
            n: "Active" for n in ("default", "kube-node-lease", "kube-public", "kube-system")
        }
        _, out, _ = await kubectl(api, "version", "-o", "json")
        assert json.loads(out)["serverVersion"]["minor"] == "32"


@pytest.mark.trio
async def test_apply_scale_label_annotate_patch_delete(api: APIHarness, tmp_path: Path) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(MANIFEST)
    with trio.fail_after(60):
        _, out, _ = await kubectl(api, "apply", "-f", str(manifest))
        assert out.split("\n")[:3] == [
            "namespace/demo created",
            "deployment.apps/web created",
            "service/web created",
        ]
        _, out, _ = await kubectl(api, "apply", "-f", str(manifest))
        assert "deployment.apps/web unchanged" in out

        _, out, _ = await kubectl(api, "-n", "demo", "get", "deploy,svc")
        assert "deployment.apps/web   0/3" in out
        svc_line = next(line for line in out.splitlines() if line.startswith("service/web"))
        cluster_ip = svc_line.split()[2]
        assert cluster_ip.startswith("127.") and svc_line.split()[4] == "80/TCP"

        await kubectl(api, "-n", "demo", "scale", "deploy", "web", "--replicas=5")
        await kubectl(api, "-n", "demo", "label", "deploy", "web", "tier=front")
        await kubectl(api, "-n", "demo", "annotate", "deploy", "web", "note=hi")
        await kubectl(api, "-n", "demo", "patch", "deploy", "web", "-p", '{"spec":{"paused":true}}')
        _, out, _ = await kubectl(api, "-n", "demo", "get", "deploy", "web", "-o", "json")
        obj = json.loads(out)
        assert obj["spec"]["replicas"] == 5 and obj["spec"]["paused"] is True
        assert obj["metadata"]["labels"] == {"app": "web", "tier": "front"}
        assert obj["metadata"]["annotations"]["note"] == "hi"
        # Scale and pause change the spec; for a Deployment an annotation counts too (upstream
        # copies them to its ReplicaSets), a label does not.
        assert obj["metadata"]["generation"] == 4

        _, out, _ = await kubectl(api, "-n", "demo", "describe", "deploy", "web")
        assert "Replicas:               5 desired" in out

        _, out, _ = await kubectl(api, "delete", "-f", str(manifest), "--wait=false")
        assert 'deployment.apps "web" deleted' in out
        code, _, err = await kubectl(api, "-n", "demo", "get", "deploy", "web", check=False)
        assert code == 1 and 'deployments.apps "web" not found' in err


@pytest.mark.trio
async def test_watch_prints_changes(api: APIHarness, tmp_path: Path) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(MANIFEST)
    with trio.fail_after(60):
        await kubectl(api, "apply", "-f", str(manifest))
        async with trio.open_nursery() as nursery:
            proc = await nursery.start(
                lambda task_status: trio.run_process(
                    ["kubectl", "--kubeconfig", str(api.kubeconfig), "-n", "demo", "get",
                     "deploy", "-w", "--request-timeout=0"],
                    stdout=subprocess.PIPE, check=False, task_status=task_status,
                )
            )  # fmt: skip
            seen = b""
            while b"0/3" not in seen:  # the initial list, then the watch
                seen += await proc.stdout.receive_some()
            await kubectl(api, "-n", "demo", "scale", "deploy", "web", "--replicas=1")
            while b"0/1" not in seen:
                seen += await proc.stdout.receive_some()
            proc.terminate()


@pytest.mark.trio
async def test_errors_as_kubectl_prints_them(api: APIHarness, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_Valid\ndata:\n  a: b\n")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\nbogus: 1\n")
    with trio.fail_after(30):
        code, _, err = await kubectl(api, "apply", "-f", str(bad), check=False)
        assert code == 1
        assert 'ConfigMap "Not_Valid" is invalid: metadata.name: Invalid value: "Not_Valid"' in err
        code, _, err = await kubectl(api, "apply", "-f", str(unknown), check=False)
        assert code == 1 and 'unknown field "bogus"' in err
        code, _, err = await kubectl(api, "get", "pods", "nope", check=False)
        assert code == 1 and 'pods "nope" not found' in err


def alice_kubeconfig(api: APIHarness, tmp_path: Path) -> Path:
    """A kubeconfig for the token user ``alice``, whom RBAC grants nothing."""
    config = tmp_path / "alice.kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": api.url,
                                             "certificate-authority": str(api.pki.ca.cert)}}
                ],
                "users": [{"name": "alice", "user": {"token": TOKEN}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "alice"}}],
                "current-context": "c",
            }
        )
    )  # fmt: skip
    return config


@pytest.mark.trio
async def test_a_token_user_is_refused_what_rbac_does_not_grant(
    api: APIHarness, tmp_path: Path
) -> None:
    config = alice_kubeconfig(api, tmp_path)
    with trio.fail_after(30):
        code, _, err = await kubectl(api, "get", "secrets", kubeconfig=config, check=False)
        assert code == 1
        assert (
            'secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" '
            'in the namespace "default"'
        ) in err
        _, out, _ = await kubectl(api, "auth", "can-i", "list", "secrets", kubeconfig=config,
                                  check=False)  # fmt: skip
        assert out.strip() == "no"
        _, out, _ = await kubectl(api, "auth", "whoami", kubeconfig=config)
        assert "alice" in out


@pytest.mark.trio
async def test_as_another_user(api: APIHarness, tmp_path: Path) -> None:
    """``--as`` is served as the user it names, to whoever may impersonate them."""
    with trio.fail_after(30):
        code, out, _ = await kubectl(
            api, "auth", "can-i", "create", "pods", "--as=system:serviceaccount:default:default",
            check=False,
        )  # fmt: skip
        assert (code, out.strip()) == (1, "no")
        _, out, _ = await kubectl(api, "auth", "whoami", "--as=jane", "--as-group=devs",
                                  "-o", "json")  # fmt: skip
        assert json.loads(out)["status"]["userInfo"] == {
            "username": "jane",
            "groups": ["devs", "system:authenticated"],
        }
        code, _, err = await kubectl(api, "get", "pods", "--as=jane", check=False)
        assert code == 1
        assert 'pods is forbidden: User "jane" cannot list resource "pods"' in err
        code, _, err = await kubectl(
            api, "get", "pods", "--as=jane", kubeconfig=alice_kubeconfig(api, tmp_path),
            check=False,
        )  # fmt: skip
        assert code == 1
        assert (
            'users "jane" is forbidden: User "alice" cannot impersonate resource "users" in '
            'API group "" at the cluster scope'
        ) in err


@pytest.mark.trio
async def test_typed_commands_and_auth(api: APIHarness) -> None:
    """kubectl's typed clients send protobuf bodies; the answers are JSON."""
    with trio.fail_after(60):
        _, out, _ = await kubectl(api, "create", "namespace", "typed")
        assert out.strip() == "namespace/typed created"
        await kubectl(api, "-n", "typed", "create", "configmap", "cfg", "--from-literal=a=b")
        await kubectl(api, "-n", "typed", "create", "deployment", "web", "--image=nginx",
                      "--replicas=2")  # fmt: skip
        _, out, _ = await kubectl(api, "-n", "typed", "get", "cm", "cfg", "-o", "json")
        assert json.loads(out)["data"] == {"a": "b"}
        _, out, _ = await kubectl(api, "auth", "whoami")
        assert "kubernetes-admin" in out and "system:masters" in out
        _, out, _ = await kubectl(api, "auth", "can-i", "create", "pods")
        assert out.strip() == "yes"
        _, out, _ = await kubectl(api, "auth", "can-i", "--list")
        assert out.splitlines()[1].split()[0] == "*.*"
