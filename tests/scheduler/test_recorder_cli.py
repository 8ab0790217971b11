"""What the scheduler writes (Events, the PodScheduled condition) and its command line."""

from __future__ import annotations

import argparse

import pytest

from raftkube.scheduler.cli import go_duration, register
from raftkube.scheduler.recorder import (
    make_event,
    pod_scheduled_false,
    scheduled_message,
    truncate_message,
)
from tests.helpers.scheduler_objects import pod

WALL = 1_750_000_000.25


def test_event_as_client_gos_recorder_makes_it() -> None:
    p = pod("web-1")
    p["metadata"]["resourceVersion"] = "42"
    event = make_event(p, "Normal", "Scheduled", scheduled_message(p, "n1"), WALL, host="h_1")
    assert event["metadata"] == {"name": f"web-1.{int(WALL * 1e9):x}", "namespace": "default"}
    assert event["involvedObject"] == {
        "kind": "Pod",
        "namespace": "default",
        "name": "web-1",
        "uid": "uid-default-web-1",
        "apiVersion": "v1",
        "resourceVersion": "42",
    }
    assert event["message"] == "Successfully assigned default/web-1 to n1"
    assert event["source"] == {"component": "default-scheduler", "host": "h_1"}
    assert (event["count"], event["type"], event["reportingComponent"]) == (
        1,
        "Normal",
        "default-scheduler",
    )
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2025-06-15T15:06:40Z"


def test_truncation_to_1024_characters() -> None:
    assert truncate_message("x" * 1024) == "x" * 1024
    assert truncate_message("x" * 2000) == "x" * 1021 + "..."


def test_condition_written_only_when_it_changes() -> None:
    p = pod("p")
    first = pod_scheduled_false(p, "Unschedulable", "0/1 nodes are available.", WALL)
    assert first == {
        "type": "PodScheduled",
        "status": "False",
        "lastProbeTime": None,
        "lastTransitionTime": "2025-06-15T15:06:40Z",
        "reason": "Unschedulable",
        "message": "0/1 nodes are available.",
    }
    p["status"]["conditions"] = [first]
    assert pod_scheduled_false(p, "Unschedulable", "0/1 nodes are available.", WALL + 60) is None
    again = pod_scheduled_false(p, "Unschedulable", "0/2 nodes are available.", WALL + 60)
    assert again is not None and again["lastTransitionTime"] == first["lastTransitionTime"]
    p["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    moved = pod_scheduled_false(p, "SchedulerError", "boom", WALL + 60)
    assert moved is not None and moved["lastTransitionTime"] == "2025-06-15T15:07:40Z"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("0", 0.0), ("1.5s", 1.5)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "15", "s", "1x", "-1s"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        go_duration(text)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["scheduler", *argv])


def test_upstreams_flags_and_defaults() -> None:
    args = parse("--kubeconfig", "k")
    assert args.leader_elect is True
    assert (args.leader_elect_lease_duration, args.leader_elect_renew_deadline) == (15.0, 10.0)
    assert args.leader_elect_retry_period == 2.0
    assert (args.leader_elect_resource_namespace, args.leader_elect_resource_name) == (
        "kube-system",
        "kube-scheduler",
    )
    assert parse("--kubeconfig", "k", "--leader-elect=false").leader_elect is False
    assert parse("--kubeconfig", "k", "--leader-elect").leader_elect is True
    args = parse("--kubeconfig", "k", "--leader-elect-lease-duration", "30s")
    assert args.leader_elect_lease_duration == 30.0
