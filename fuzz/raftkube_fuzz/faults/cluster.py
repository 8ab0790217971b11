"""The cluster suite's component faults (crash, restart, pause, resume, cut, clocks, wall
clocks, slow links on a control-plane or node host), each registered in
:data:`raftkube_fuzz.faults.REGISTRY` with how it is applied and healed.

The suite's own rules draw them, because picking a host means reading the control plane of the
run, so they have no strategy here and join no base family. Each kind applies to the host its
step names; a step that no longer applies (crashing a host that is down, resuming one that
runs) is recorded as a no-op, so a shrunk trace stays replayable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from raftkube_fuzz.faults import CLOCK, CUT, DOWN, PAUSED, SLOW, FaultKind, register
from raftkube_fuzz.steps import Step
from raftkube_fuzz.timeline import FAULT

if TYPE_CHECKING:
    from raftkube_fuzz.cluster.plane import ControlPlane
    from raftkube_fuzz.example import Run
    from raftkube_fuzz.world.host import Host

SLOW_LATENCIES = (0.05, 0.5, 2.0)
"""The lag ceilings of ``host_slow`` (seconds): each of the component's connections lags by
its own share of it, so a connection stays in order but one informer's watch runs behind
another's (:mod:`raftkube_fuzz.cluster.lag`)."""


def plane_of(run: Run) -> ControlPlane:
    """The run's control plane (the cluster suite's ``prepare`` puts it in ``run.extras``)."""
    plane: ControlPlane = run.extras["plane"]
    return plane


def component(run: Run, name: str) -> Host:
    """The control-plane or node host called ``name``."""
    for host in plane_of(run).components:
        if host.name == name:
            return host
    raise ValueError(f"no component named {name!r}")


def slow_host(run: Run, host: Host, seconds: float) -> None:
    """Each of ``host``'s connections hands on what it receives its own share of ``seconds``
    late (:mod:`raftkube_fuzz.cluster.lag`): its watches lag, each by its own amount."""
    plane_of(run).lags.set(host.name, seconds)
    run.fault(
        "host_slow",
        f"{host.name}'s connections lag, each by its own share of {seconds} s",
        hosts=[host.name],
    )


def _no_op(run: Run, step: Step) -> None:
    run.timeline.add(run.sim.now, None, FAULT, f"{step.describe()}: does not apply (no-op)")


def _on_host(
    applies: Callable[[Run, Host], bool], act: Callable[[Run, Step, Host], None]
) -> Callable[[Run, Step, int], None]:
    """A fault's apply function: ``act`` on the step's host when ``applies``, else a no-op."""

    def apply(run: Run, step: Step, member: int) -> None:
        name = step.get("host")
        host = component(run, name) if name is not None else None
        if host is not None and applies(run, host):
            act(run, step, host)
        else:
            _no_op(run, step)

    return apply


def _crash(run: Run, step: Step, host: Host) -> None:
    plane = plane_of(run)
    host.crash()
    if host in plane.managers:
        plane.leadership.ended(host.name)
    if host in plane.schedulers:
        plane.scheduling.ended(host.name)
    run.fault(step.kind, f"{host.name} crashed", hosts=[host.name])


def _restart(run: Run, step: Step, host: Host) -> None:
    host.restart()
    run.fault(step.kind, f"{host.name} restarted", hosts=[host.name])


def _pause(run: Run, step: Step, host: Host) -> None:
    host.pause()
    run.fault(step.kind, f"{host.name} paused (SIGSTOP)", hosts=[host.name])


def _resume(run: Run, step: Step, host: Host) -> None:
    host.resume()
    run.fault(step.kind, f"{host.name} resumed", hosts=[host.name])


def _cut_from_api(run: Run, host: Host) -> None:
    """Both ways between ``host`` and every API server: a component talks to one of them
    (:mod:`raftkube_fuzz.cluster.plane`), so this is its own server lost, and with two the
    other is no way round."""
    for api in plane_of(run).apiservers:
        run.world.one_way(host.node, api.node)
        run.world.one_way(api.node, host.node)


def _cut(run: Run, step: Step, host: Host) -> None:
    _cut_from_api(run, host)
    run.fault(step.kind, f"{host.name} cut off from the API server", hosts=[host.name])


def _cut_nodes(run: Run, step: Step, member: int) -> None:
    """The control plane cut off from every node at once (both ways): every kubelet (and its
    kube-proxy) loses the API server in one step, as when the control plane's own network
    fails, which is what a node lifecycle controller must tell from the nodes failing."""
    plane = plane_of(run)
    for host in plane.kubelets:
        _cut_from_api(run, host)
    names = [host.name for host in plane.kubelets]
    run.fault(step.kind, f"the control plane cut off from every node ({', '.join(names)})",
              hosts=names)  # fmt: skip


def _heal(run: Run, step: Step, member: int) -> None:
    run.world.heal()
    run.fault(step.kind, "network healed")


def _slow(run: Run, step: Step, host: Host) -> None:
    slow_host(run, host, float(step["seconds"]))


def _clock_jump(run: Run, step: Step, host: Host) -> None:
    host.clock.jump(float(step["seconds"]))
    run.fault(step.kind, f"{host.name}'s clock jumps {step['seconds']} s", hosts=[host.name])


def _clock_rate(run: Run, step: Step, host: Host) -> None:
    host.clock.set_rate(float(step["rate"]))
    run.fault(step.kind, f"{host.name}'s clock runs at rate {step['rate']}", hosts=[host.name])


def _wall_offset(run: Run, step: Step, host: Host) -> None:
    host.clock.set_wall_offset(float(step["seconds"]))
    run.fault(
        step.kind,
        f"{host.name}'s wall clock is stepped to {step['seconds']} s off (its monotonic clock "
        "is not)",
        hosts=[host.name],
    )


def _on_host_quietly(
    act: Callable[[Run, Step, Host], None],
) -> Callable[[Run, Step, int], None]:
    """For ``host_cut`` and ``host_slow``: aimed at an API server they do nothing at all
    (no no-op line), as the suite has always done (two API servers do not talk to each
    other, and an API server's links to the store are the store's faults'); with no host, a
    no-op."""

    def apply(run: Run, step: Step, member: int) -> None:
        name = step.get("host")
        if name is None:
            _no_op(run, step)
            return
        host = component(run, name)
        if host not in plane_of(run).apiservers:
            act(run, step, host)

    return apply


def _host_step(kind: str, **args: Any) -> Callable[[Run, Step], tuple[Step, ...]]:
    def undo(run: Run, step: Step) -> tuple[Step, ...]:
        return (Step.of(kind, host=step["host"], **args),)

    return undo


def _always(run: Run, host: Host) -> bool:
    return True


def _register() -> tuple[str, ...]:
    kinds = (
        FaultKind("host_crash", "component", None, _on_host(lambda r, h: h.up, _crash),
                  "host_restart restarts the process", _host_step("host_restart"), opens=DOWN),
        FaultKind("host_restart", "component", None, _on_host(lambda r, h: not h.up, _restart),
                  "it is itself the healing of a crash", closes=frozenset({DOWN}), bound=True),
        FaultKind("host_pause", "component", None,
                  _on_host(lambda r, h: h.up and not h.paused, _pause),
                  "host_resume lets it go on", _host_step("host_resume"), opens=PAUSED),
        FaultKind("host_resume", "component", None, _on_host(lambda r, h: h.paused, _resume),
                  "it is itself the healing of a pause", closes=frozenset({PAUSED}), bound=True),
        FaultKind("host_cut", "component", None, _on_host_quietly(_cut),
                  "host_heal unblocks every link", lambda run, step: (Step.of("host_heal"),),
                  opens=CUT),
        FaultKind("nodes_cut", "component", None, _cut_nodes,
                  "host_heal unblocks every link", lambda run, step: (Step.of("host_heal"),),
                  opens=CUT),
        FaultKind("host_heal", "component", None, _heal,
                  "it is itself the healing of every link fault", closes=frozenset({CUT})),
        FaultKind("host_clock_jump", "component", None, _on_host(_always, _clock_jump),
                  "never undone: local time moved on for good", opens=CLOCK),
        FaultKind("host_clock_rate", "component", None, _on_host(_always, _clock_rate),
                  "the final heal resyncs every clock (a rate of 1 undoes it too)",
                  _host_step("host_clock_rate", rate=1.0), opens=CLOCK),
        FaultKind("host_wall_offset", "component", None, _on_host(_always, _wall_offset),
                  "the final heal resyncs every clock (an offset of 0 undoes it too)",
                  _host_step("host_wall_offset", seconds=0.0), opens=CLOCK),
        FaultKind("host_slow", "component", None, _on_host_quietly(_slow),
                  "the final checks clear every lag", opens=SLOW),
    )  # fmt: skip
    for kind in kinds:
        register(kind)
    return tuple(kind.name for kind in kinds)


COMPONENT_FAULTS = _register()
"""The component fault kinds, in registration order."""
