"""The process runtime on real processes: pod IPs, logs, signals, adoption, refusals."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.runtime import (
    ContainerConfig,
    ContainerState,
    CreateContainerError,
    PodSandboxConfig,
)
from raftkube.runtime.process import ProcessRuntime

SERVER = """
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from {os.environ['POD_IP']} as {os.environ['WHO']}".encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
print("serving", flush=True)
http.server.HTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
"""

STUBBORN = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: print("got SIGTERM, ignoring", flush=True))
print("up", flush=True)
while True:
    time.sleep(0.05)
"""


def runtime(root: Path) -> ProcessRuntime:
    return ProcessRuntime(TrioClock(), root, "127.1.0.0/24")


async def run(rt: ProcessRuntime, script: str, **env: str) -> tuple[str, str]:
    sandbox = await rt.run_pod_sandbox(PodSandboxConfig("p", "ns", "uid-1"))
    config = ContainerConfig(
        "c", "python", command=(sys.executable, "-c"), args=(script,), env=tuple(env.items())
    )
    cid = await rt.create_container(sandbox, config)
    await rt.start_container(cid)
    return sandbox, cid


async def get(host: str, port: int) -> bytes:
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


async def until_connects(host: str, port: int) -> bytes:
    while True:
        try:
            return await get(host, port)
        except OSError:
            await trio.sleep(0.05)


@pytest.mark.trio
async def test_a_server_answers_on_its_pod_ip_and_logs(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    with trio.fail_after(20):
        sandbox, cid = await run(rt, SERVER, WHO="pod-a")
        answer = await until_connects("127.1.0.2", 8080)
        status = await rt.container_status(cid)
        await rt.stop_container(cid, 5)
        stopped = await rt.container_status(cid)
    assert answer.endswith(b"hello from 127.1.0.2 as pod-a")
    assert status.state is ContainerState.RUNNING
    log = Path(status.log_path)
    assert log == tmp_path / "pods/ns_p_uid-1/c/0.log"
    assert log.read_text().startswith("serving\n")
    assert (stopped.state, stopped.exit_code) == (ContainerState.EXITED, 128 + 15)
    await rt.remove_pod_sandbox(sandbox)
    assert not log.exists() and await rt.list_pod_sandboxes() == []


@pytest.mark.trio
async def test_sigterm_then_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    clock = TrioClock()
    with trio.fail_after(20):
        _, cid = await run(rt, STUBBORN)
        log = Path((await rt.container_status(cid)).log_path)
        while "up" not in log.read_text():
            await trio.sleep(0.05)
        t0 = clock.now()
        await rt.stop_container(cid, 1.0)
        took = clock.now() - t0
        status = await rt.container_status(cid)
    assert 1.0 <= took < 5
    assert (status.exit_code, status.reason) == (137, "Error")
    assert "got SIGTERM, ignoring" in log.read_text()


@pytest.mark.trio
async def test_a_new_runtime_on_the_same_root_adopts_running_containers(tmp_path: Path) -> None:
    first = runtime(tmp_path)
    with trio.fail_after(20):
        sandbox, cid = await run(first, STUBBORN)
        second = runtime(tmp_path)
        [listed] = await second.list_containers()
        assert (listed.id, listed.state) == (cid, ContainerState.RUNNING)
        [pod] = await second.list_pod_sandboxes()
        assert pod.ip == "127.1.0.2"
        again = await second.run_pod_sandbox(PodSandboxConfig("q", "ns", "uid-2"))
        ips = {s.id: s.ip for s in await second.list_pod_sandboxes()}
        assert ips[again] == "127.1.0.3"
        await second.remove_pod_sandbox(sandbox)
    assert await second.list_containers(sandbox) == []


@pytest.mark.trio
async def test_nothing_runnable_fails_at_once(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    sandbox = await rt.run_pod_sandbox(PodSandboxConfig("p", "ns", "uid-1"))
    with pytest.raises(CreateContainerError, match=r'"c" has no command.*only a name'):
        await rt.create_container(sandbox, ContainerConfig("c", "nginx"))
    with pytest.raises(CreateContainerError, match="executable file not found in"):
        await rt.create_container(sandbox, ContainerConfig("c", "x", command=("no-such-tool",)))


@pytest.mark.trio
async def test_exec_runs_in_the_containers_environment(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    with trio.fail_after(20):
        _, cid = await run(rt, STUBBORN, WHO="me")
        check = (sys.executable, "-c", "import os; print(os.environ['WHO'], os.environ['POD_IP'])")
        result = await rt.exec_sync(cid, check, 5)
        failing = await rt.exec_sync(cid, (sys.executable, "-c", "raise SystemExit(3)"), 5)
        await rt.stop_container(cid, 0)
    assert (result.exit_code, result.output) == (0, b"me 127.1.0.2\n")
    assert failing.exit_code == 3
