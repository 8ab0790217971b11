"""The kubelet (:mod:`.kubelet`): its Node and heartbeats (:mod:`.node`), pod admission
(:mod:`.admission`), one worker per pod over a CRI-shaped runtime (:mod:`.podworker`), pod
status (:mod:`.status`), probes (:mod:`.probes`), crash-loop back-off (:mod:`.backoff`) and
container environments (:mod:`.env`). :mod:`.cli` is ``raftkube kubelet``."""

from raftkube.kubelet.admission import Rejection, admit
from raftkube.kubelet.backoff import CrashLoopBackOff
from raftkube.kubelet.kubelet import Kubelet
from raftkube.kubelet.node import NodeConfig, NodeStatusReporter
from raftkube.kubelet.podworker import NodeContext, PodWorker
from raftkube.kubelet.probes import NetworkProber, Prober, RuntimeProber

__all__ = [
    "CrashLoopBackOff",
    "Kubelet",
    "NetworkProber",
    "NodeConfig",
    "NodeContext",
    "NodeStatusReporter",
    "PodWorker",
    "Prober",
    "Rejection",
    "RuntimeProber",
    "admit",
]
