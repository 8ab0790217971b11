"""``raftkube up`` with its API server: the PKI and kubeconfigs it plans, the API server's
command line, the port checks, and real processes: the admin kubeconfig works with KubeClient
and kubectl, a restart resumes the same cluster with the same credentials, a busy API server
port is one clear line.

Every wait is bounded and every process is killed at teardown, whatever happens.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import stat
import sys
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.x509.oid import NameOID

from raftkube.apiserver import cli as apiserver_cli
from raftkube.apiserver.config import APIServerConfig
from raftkube.client import Client
from raftkube.cluster import control_plane, up
from raftkube.cluster.control_plane import plan_control_plane
from raftkube.kubeclient import KubeClient, load_kubeconfig
from raftkube.tls import ensure_cluster_certs
from tests.helpers.processes import Processes, free_port_block, free_ports, wait_exit, wait_up


def subject(cert: Path) -> tuple[str, list[str]]:
    name = x509.load_pem_x509_certificate(cert.read_bytes()).subject
    cn = name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    groups = [a.value for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return str(cn), [str(g) for g in groups]


# --- planning, without processes ------------------------------------------------------------


def test_the_pki_is_made_once_and_the_kubeconfigs_follow_the_port(tmp_path: Path) -> None:
    plan = plan_control_plane(tmp_path, "127.0.0.1", 16443)
    assert plan.server == "https://127.0.0.1:16443"
    assert subject(plan.pki.admin.cert) == ("kubernetes-admin", ["system:masters"])
    assert subject(plan.pki.scheduler.cert) == ("system:kube-scheduler", [])
    assert subject(plan.pki.controller_manager.cert) == ("system:kube-controller-manager", [])
    kubeconfigs = {
        plan.admin_kubeconfig: "kubernetes-admin",
        plan.scheduler_kubeconfig: "system:kube-scheduler",
        plan.controller_manager_kubeconfig: "system:kube-controller-manager",
    }
    for path, user in kubeconfigs.items():
        assert path.is_absolute() and path.parent == tmp_path.absolute()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        config = load_kubeconfig(path)
        assert config.server == plan.server
        assert config.certificate_authority == plan.pki.ca.cert.read_bytes()
        assert user in path.read_text()
    assert plan.admin_kubeconfig.name == "admin.kubeconfig"
    serving = x509.load_pem_x509_certificate(plan.pki.apiserver.cert.read_bytes())
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes.default.svc" in names.get_values_for_type(x509.DNSName)
    ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert {"127.0.0.1", "127.96.0.1"} <= ips

    # Again, on another port: nothing is regenerated, the kubeconfigs name the new port.
    files = sorted(p for p in (tmp_path / "pki").iterdir())
    before = {p: p.read_bytes() for p in files}
    again = plan_control_plane(tmp_path, "127.0.0.1", 16444)
    assert sorted((tmp_path / "pki").iterdir()) == files
    assert {p: p.read_bytes() for p in files} == before
    assert load_kubeconfig(again.admin_kubeconfig).server == "https://127.0.0.1:16444"
    assert load_kubeconfig(again.admin_kubeconfig).client_key == before[plan.pki.admin.key]


def test_extra_sans_put_the_other_api_servers_in_the_serving_certificate(
    tmp_path: Path,
) -> None:
    """An HA control plane's API servers serve one certificate, which names every one of
    them (kubeadm's ``--apiserver-cert-extra-sans``); the kubeconfigs still name ``host``."""
    plan = plan_control_plane(tmp_path, "192.168.0.2", 6443, extra_sans=("192.168.0.3",))
    serving = x509.load_pem_x509_certificate(plan.pki.apiserver.cert.read_bytes())
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert {"192.168.0.2", "192.168.0.3"} <= ips
    assert load_kubeconfig(plan.admin_kubeconfig).server == "https://192.168.0.2:6443"


def parse_apiserver_argv(argv: list[str]) -> APIServerConfig:
    """The API server's own parser reads the command line the plan makes."""
    assert argv[:4] == [sys.executable, "-m", "raftkube.cluster", "apiserver"]
    parser = argparse.ArgumentParser()
    control_plane.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv[3:])
    assert args.stop_on_stdin_eof
    config = apiserver_cli.config_from_args(args)
    config.check()
    return config


def test_the_apiserver_command_line_parses_and_names_every_file(tmp_path: Path) -> None:
    plan = plan_control_plane(tmp_path, "127.0.0.1", 16443)
    config = parse_apiserver_argv(plan.argv(["127.0.0.1:2379", "127.0.0.1:2381"]))
    assert config.etcd_servers == ("127.0.0.1:2379", "127.0.0.1:2381")
    assert (config.bind_address, config.secure_port) == ("127.0.0.1", 16443)
    assert config.tls_cert_file == plan.pki.apiserver.cert
    assert config.client_ca_file == plan.pki.ca.cert
    assert config.service_account_signing_key_file == plan.pki.sa_private_key
    assert config.etcd_cafile is None and config.etcd_certfile is None

    certs = ensure_cluster_certs(tmp_path / "tls", range(3))
    tls_plan = plan_control_plane(tmp_path, "127.0.0.1", 16443, certs)
    config = parse_apiserver_argv(tls_plan.argv(["127.0.0.1:2379"]))
    assert config.etcd_cafile == certs.ca.cert
    assert (config.etcd_certfile, config.etcd_keyfile) == (certs.client.cert, certs.client.key)


def up_namespace(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    up.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["up", *argv])


def test_make_plan_checks_the_apiserver_port(tmp_path: Path) -> None:
    base = free_port_block(6)
    (api,) = free_ports(1)
    data = tmp_path / "c"
    plan = up.make_plan(
        up_namespace(
            "--data-dir", str(data), "--port-base", str(base), "--apiserver-port", str(api)
        )
    )
    assert plan.control_plane is not None and plan.control_plane.port == api
    assert plan.control_plane.admin_kubeconfig == (data / "admin.kubeconfig").absolute()

    clash = up_namespace(
        "--data-dir", str(data), "--port-base", str(base), "--apiserver-port", str(base + 3)
    )
    with pytest.raises(up.UpError, match="member 1's port"):
        up.make_plan(clash)

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", api))
        busy.listen()
        args = up_namespace(
            "--data-dir", str(data), "--port-base", str(base), "--apiserver-port", str(api)
        )
        with pytest.raises(up.UpError, match=f"port {api} .*choose another --apiserver-port"):
            up.make_plan(args)


def test_up_passes_the_compaction_interval_to_the_apiserver(tmp_path: Path) -> None:
    base = free_port_block(6)
    (api,) = free_ports(1)
    common = ["--data-dir", str(tmp_path / "c"), "--port-base", str(base), "--apiserver-port",
              str(api)]  # fmt: skip
    for given, seconds in (([], 300.0), (["--etcd-compaction-interval", "30s"], 30.0),
                           (["--etcd-compaction-interval", "0"], 0.0)):  # fmt: skip
        plan = up.make_plan(up_namespace(*common, *given))
        assert plan.control_plane is not None
        config = parse_apiserver_argv(plan.control_plane.argv(["127.0.0.1:2379"]))
        assert config.etcd_compaction_interval == seconds
    with pytest.raises(SystemExit):  # argparse names the flag and the bad value
        up_namespace(*common, "--etcd-compaction-interval", "5 minutes")


# --- real processes -----------------------------------------------------------------------


def up_args(data: Path, base: int, api: int) -> list[str]:
    return ["up", "--data-dir", str(data), "--port-base", str(base), "--apiserver-port", str(api),
            "--nodes", "0", "--stop-timeout", "10"]  # fmt: skip


def kubeconfig_of(text: str) -> Path:
    (line,) = [ln for ln in text.splitlines() if "export KUBECONFIG=" in ln]
    return Path(line.split("=", 1)[1])


@pytest.mark.trio
async def test_up_serves_the_kubernetes_api_and_resumes(tmp_path: Path, procs: Processes) -> None:
    base = free_port_block(6)
    (api,) = free_ports(1)
    data = tmp_path / "cluster"
    endpoints = [f"127.0.0.1:{base + 2 * i}" for i in range(3)]
    with trio.fail_after(150):
        proc = procs.start(up_args(data, base, api), "up")
        text = await wait_up(proc, timeout=60)
        kubeconfig = kubeconfig_of(text)
        assert kubeconfig == (data / "admin.kubeconfig").absolute()
        assert f"export RKCTL_ENDPOINTS={','.join(endpoints)}" in text
        assert f"apiserver: https://127.0.0.1:{api}" in text
        async with KubeClient.from_kubeconfig(kubeconfig) as kube:
            version = await kube.call("GET", "/version")
            assert version["gitVersion"].startswith("v1.")
            names = {
                n["metadata"]["name"] for n in (await kube.list("/api/v1/namespaces"))["items"]
            }
            assert {"default", "kube-system"} <= names
            ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kept"}}
            await kube.create("/api/v1/namespaces", ns)
        async with Client(endpoints) as store:  # the store's own clients still work
            await store.put(b"key", b"value")
        assert "[apiserver]" in procs.err(proc)

        credentials = kubeconfig.read_bytes()
        pki = {p.name: p.read_bytes() for p in (data / "pki").iterdir()}
        proc.send_signal(signal.SIGINT)
        assert await wait_exit(proc, timeout=20) == 0, procs.err(proc)
        err = procs.err(proc)
        assert "[apiserver]" in err and "every member stopped" in err
        assert "exited unexpectedly" not in err, err

        # The same data dir: same cluster, same credentials, the namespace made before is there.
        proc = procs.start(up_args(data, base, api), "up-again")
        await wait_up(proc, timeout=60)
        assert kubeconfig.read_bytes() == credentials
        assert {p.name: p.read_bytes() for p in (data / "pki").iterdir()} == pki
        async with KubeClient.from_kubeconfig(kubeconfig) as kube:
            kept = await kube.get("/api/v1/namespaces", "kept")
            assert kept["status"]["phase"] == "Active"
        async with Client(endpoints) as store:
            assert (await store.get(b"key")).kvs[0].value == b"value"
        proc.send_signal(signal.SIGTERM)
        assert await wait_exit(proc, timeout=20) == 0, procs.err(proc)


@pytest.mark.trio
async def test_kubectl_get_ns_works_at_once(tmp_path: Path, procs: Processes) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    base = free_port_block(6)
    (api,) = free_ports(1)
    with trio.fail_after(120):
        proc = procs.start(up_args(tmp_path / "c", base, api), "up")
        kubeconfig = kubeconfig_of(await wait_up(proc, timeout=60))
        result = await trio.run_process(
            [kubectl, "--kubeconfig", str(kubeconfig), "get", "ns"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()
        lines = result.stdout.decode().splitlines()
        assert lines[0].split() == ["NAME", "STATUS", "AGE"]
        assert {ln.split()[0] for ln in lines[1:]} >= {"default", "kube-system"}
        proc.send_signal(signal.SIGINT)
        assert await wait_exit(proc, timeout=20) == 0, procs.err(proc)


@pytest.mark.trio
async def test_a_busy_apiserver_port_is_one_clear_line(tmp_path: Path, procs: Processes) -> None:
    base = free_port_block(6)
    with trio.fail_after(30), socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        api = busy.getsockname()[1]
        proc = procs.start(up_args(tmp_path / "c", base, api), "busy")
        assert await wait_exit(proc, timeout=20) == 1
        err = procs.err(proc).strip()
        assert len(err.splitlines()) == 1, err
        assert f"port {api} (the API server)" in err and "--apiserver-port" in err, err
        assert not (tmp_path / "c" / "cluster.json").exists()
