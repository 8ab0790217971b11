"""A runtime of local processes: every container a process group, every pod an IP.

**What runs.** An image is only a name here: nothing is pulled or unpacked. A container runs
its ``command`` followed by its ``args`` (as upstream joins them when both replace the
image's entrypoint), with the executable looked up on the kubelet's ``PATH``. A container
without a ``command`` has nothing to run and fails at once with ``CreateContainerError``
("... has no command ..."); so does one whose executable cannot be found. Nothing waits for
an image.

**Where and with what.** Each pod gets a directory ``{root}/sandboxes/{sandbox-id}/`` (the
container's working directory; ``workingDir`` is taken inside it) and an IP from the node's pod
CIDR in 127.0.0.0/8, which every container sees as ``POD_IP`` (a server binds it, so pods on
one machine never collide on ports). The environment is the container's own (from the
kubelet) over ``PATH`` and ``HOME`` (the pod directory), nothing else of the kubelet's.

**Mounts.** Without root there is no mount namespace: a mount (a volume the kubelet wrote) is
a symlink at its container path *inside the pod directory*, so the service-account token of
``/var/run/secrets/kubernetes.io/serviceaccount/token`` is read by a container as the relative
path ``var/run/secrets/kubernetes.io/serviceaccount/token`` (or under ``$HOME``).

**Lifecycle.** A container is started through :mod:`.shim` as the leader of a new session
(``start_new_session``), so it and its children form one process group: a stop sends SIGTERM to
the group, waits up to the grace period on the runtime's clock, then sends SIGKILL. Output
(stdout and stderr together, as written, without CRI's per-line timestamp prefix) goes to
``{root}/pods/{namespace}_{name}_{uid}/{container}/{attempt}.log``, upstream's layout.

**Restarts.** Sandboxes and containers are recorded as JSON files beside the pod directory and
times as wall-clock seconds, so a runtime opened again on the same ``root`` (a restarted
kubelet) lists what still runs and how the rest ended (from the shim's exit file). Process
liveness is read from ``/proc`` (Linux), checked against the process's start time so a
recycled pid is not mistaken for the container.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from raftkube.clock import Clock, move_on_after, sleep_for
from raftkube.runtime.interface import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    CreateContainerError,
    ExecResult,
    NotFound,
    PodSandboxConfig,
    PodSandboxStatus,
    SandboxState,
)
from raftkube.runtime.ipam import IPAllocator

EXIT_KILLED = 137
POLL_INTERVAL = 0.05
"""How often a stop checks whether the group has exited (on the runtime's clock)."""


def _proc_start_time(pid: int) -> str | None:
    """Field 22 of ``/proc/{pid}/stat`` (start time in ticks), or None for no live process
    (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return fields[19]


@attrs.define
class ProcessRuntime:
    """The :class:`~raftkube.runtime.interface.RuntimeService` of local processes; see the
    module docstring."""

    clock: Clock
    root: Path = attrs.field(converter=Path)
    pod_cidr: str
    wall: Callable[[], float] = time.time
    _ips: IPAllocator = attrs.field(init=False)
    _children: dict[int, subprocess.Popen[bytes]] = attrs.field(factory=dict, init=False)
    _ids: itertools.count[int] = attrs.field(factory=itertools.count, init=False)

    def __attrs_post_init__(self) -> None:
        self._ips = IPAllocator(self.pod_cidr)
        (self.root / "sandboxes").mkdir(parents=True, exist_ok=True)
        for record in self._sandbox_records():
            if record.get("state") == SandboxState.READY.value:
                self._ips.reserve(record["ip"])

    # --- records on disk ----------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{int(self.wall() * 1000):x}-{os.getpid():x}-{next(self._ids)}"

    def _sandbox_dir(self, sandbox_id: str) -> Path:
        return self.root / "sandboxes" / sandbox_id

    def _sandbox_records(self) -> list[dict[str, Any]]:
        return [
            json.loads(path.read_text())
            for path in sorted((self.root / "sandboxes").glob("*/sandbox.json"))
        ]

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise NotFound(f"no record at {path}") from None
        return data

    @staticmethod
    def _write(path: Path, record: dict[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)

    def _reading(self, wall: float) -> float:
        """A wall-clock time as a reading of the runtime's clock."""
        return self.clock.now() - (self.wall() - wall)

    # --- sandboxes ----------------------------------------------------------------------------

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sandbox_id = self._new_id("sandbox")
        directory = self._sandbox_dir(sandbox_id)
        (directory / "containers").mkdir(parents=True)
        record = {
            "id": sandbox_id,
            "config": attrs.asdict(config),
            "ip": self._ips.allocate(),
            "created": self.wall(),
            "state": SandboxState.READY.value,
        }
        self._write(directory / "sandbox.json", record)
        return sandbox_id

    def _sandbox_status(self, record: dict[str, Any]) -> PodSandboxStatus:
        return PodSandboxStatus(
            record["id"],
            PodSandboxConfig(**record["config"]),
            SandboxState(record["state"]),
            record["ip"],
            self._reading(record["created"]),
        )

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return [self._sandbox_status(r) for r in self._sandbox_records()]

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        path = self._sandbox_dir(sandbox_id) / "sandbox.json"
        record = self._read(path)
        for status in await self.list_containers(sandbox_id):
            if status.state is ContainerState.RUNNING:
                await self.stop_container(status.id, 0)
        if record["state"] == SandboxState.READY.value:
            self._ips.release(record["ip"])
        record["state"] = SandboxState.NOTREADY.value
        self._write(path, record)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        directory = self._sandbox_dir(sandbox_id)
        if not directory.exists():
            return
        await self.stop_pod_sandbox(sandbox_id)
        record = self._read(directory / "sandbox.json")
        shutil.rmtree(self._log_dir(PodSandboxConfig(**record["config"])), ignore_errors=True)
        shutil.rmtree(directory, ignore_errors=True)

    # --- containers ---------------------------------------------------------------------------

    def _log_dir(self, config: PodSandboxConfig) -> Path:
        return self.root / "pods" / f"{config.namespace}_{config.name}_{config.uid}"

    def _container_dir(self, container_id: str) -> Path:
        sandbox_id = container_id.split("~", 1)[0]
        return self._sandbox_dir(sandbox_id) / "containers" / container_id

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        sandbox = self._read(self._sandbox_dir(sandbox_id) / "sandbox.json")
        if not config.command:
            raise CreateContainerError(
                f'container "{config.name}" has no command: the process runtime runs a '
                f"container's command and args; an image ({config.image!r}) is only a name"
            )
        path = os.environ.get("PATH", os.defpath)
        if shutil.which(config.command[0], path=path) is None:
            raise CreateContainerError(
                f'exec: "{config.command[0]}": executable file not found in $PATH'
            )
        container_id = f"{sandbox_id}~{self._new_id('c')}"
        directory = self._container_dir(container_id)
        directory.mkdir(parents=True)
        pod = PodSandboxConfig(**sandbox["config"])
        log = self._log_dir(pod) / config.name / f"{config.attempt}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
        record = {
            "id": container_id,
            "sandbox": sandbox_id,
            "config": attrs.asdict(config),
            "ip": sandbox["ip"],
            "created": self.wall(),
            "log": str(log),
        }
        self._write(directory / "container.json", record)
        return container_id

    def _environment(self, record: dict[str, Any]) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(self._sandbox_dir(record["sandbox"])),
            "POD_IP": record["ip"],
        }
        env.update(dict(record["config"]["env"]))
        return env

    def _workdir(self, record: dict[str, Any]) -> Path:
        base = self._sandbox_dir(record["sandbox"])
        inside = str(record["config"]["working_dir"] or "").lstrip("/")
        workdir = base / inside if inside else base
        workdir.mkdir(parents=True, exist_ok=True)
        return workdir

    def _mount(self, record: dict[str, Any]) -> None:
        """Each mount as a symlink at its container path inside the pod directory."""
        base = self._sandbox_dir(record["sandbox"])
        for container_path, host_path in record["config"].get("mounts") or ():
            link = base / str(container_path).lstrip("/")
            if link.is_symlink() or link.exists():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(host_path)

    async def start_container(self, container_id: str) -> None:
        directory = self._container_dir(container_id)
        record = self._read(directory / "container.json")
        if "pid" in record:
            raise CreateContainerError(f"container {container_id} was already started")
        config = record["config"]
        command = [*config["command"], *config["args"]]
        self._mount(record)
        shim = [sys.executable, "-m", "raftkube.runtime.shim", str(directory / "exit")]
        child = subprocess.Popen(
            [*shim, record["log"], "--", *command],
            cwd=self._workdir(record),
            env=self._environment(record),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._children[child.pid] = child
        record.update(pid=child.pid, started=self.wall(), ticks=_proc_start_time(child.pid))
        self._write(directory / "container.json", record)

    def _alive(self, record: dict[str, Any]) -> bool:
        pid = record.get("pid")
        if pid is None:
            return False
        child = self._children.get(pid)
        if child is not None and child.poll() is not None:
            del self._children[pid]
            return False
        return _proc_start_time(pid) == record.get("ticks")

    def _status(self, record: dict[str, Any]) -> ContainerStatus:
        directory = self._container_dir(record["id"])
        config = ContainerConfig(
            **{**record["config"], "command": (), "args": (), "env": (), "mounts": ()}
        )
        started = self._reading(record["started"]) if "started" in record else None
        status = ContainerStatus(
            id=record["id"],
            sandbox_id=record["sandbox"],
            name=config.name,
            attempt=config.attempt,
            image=config.image,
            state=ContainerState.CREATED,
            created_at=self._reading(record["created"]),
            started_at=started,
            labels=dict(config.labels),
            log_path=record["log"],
        )
        if "pid" not in record:
            return status
        if self._alive(record):
            return attrs.evolve(status, state=ContainerState.RUNNING)
        exit_file = directory / "exit"
        try:
            code = int(exit_file.read_text())
            finished = exit_file.stat().st_mtime
        except (OSError, ValueError):
            code, finished = EXIT_KILLED, record.get("killed", self.wall())
        return attrs.evolve(
            status,
            state=ContainerState.EXITED,
            exit_code=code,
            finished_at=self._reading(finished),
            reason="Completed" if code == 0 else "Error",
        )

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._status(self._read(self._container_dir(container_id) / "container.json"))

    async def list_containers(self, sandbox_id: str = "") -> list[ContainerStatus]:
        pattern = f"{sandbox_id or '*'}/containers/*/container.json"
        return [
            self._status(json.loads(path.read_text()))
            for path in sorted((self.root / "sandboxes").glob(pattern))
        ]

    async def stop_container(self, container_id: str, timeout: float) -> None:
        """SIGTERM to the group, SIGKILL once ``timeout`` seconds pass on the clock."""
        path = self._container_dir(container_id) / "container.json"
        record = self._read(path)
        if not self._alive(record):
            return
        pid = record["pid"]
        self._signal(pid, signal.SIGTERM)
        deadline = self.clock.now() + timeout
        while self._alive(record) and self.clock.now() < deadline:
            await sleep_for(self.clock, POLL_INTERVAL)
        if self._alive(record):
            record["killed"] = self.wall()
            self._write(path, record)
            self._signal(pid, signal.SIGKILL)
            while self._alive(record):
                await sleep_for(self.clock, POLL_INTERVAL)

    @staticmethod
    def _signal(pgid: int, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signum)

    async def remove_container(self, container_id: str) -> None:
        directory = self._container_dir(container_id)
        if directory.exists():
            await self.stop_container(container_id, 0)
            shutil.rmtree(directory, ignore_errors=True)

    async def exec_sync(
        self, container_id: str, command: tuple[str, ...], timeout: float
    ) -> ExecResult:
        record = self._read(self._container_dir(container_id) / "container.json")
        if not self._alive(record):
            return ExecResult(1, b"container is not running")
        with move_on_after(self.clock, timeout):
            try:
                done = await trio.run_process(
                    list(command),
                    cwd=self._workdir(record),
                    env=self._environment(record),
                    capture_stdout=True,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            except OSError as exc:
                return ExecResult(126, str(exc).encode())
            return ExecResult(done.returncode, done.stdout)
        return ExecResult(1, f"command timed out after {timeout}s".encode())
