"""core/v1 Event and coordination.k8s.io/v1 Lease.

Events are validated as upstream validates core/v1 events (``legacyValidateEvent``): the
involved object's namespace must be the event's (or, for a cluster-scoped object, the event
lives in ``default`` or nowhere). Their field labels are the ones ``kubectl describe`` selects
on (``involvedObject.*``, ``reason``, ``source``, ``type``, ``reportingComponent``).

Leases need a positive ``leaseDurationSeconds`` and non-negative ``leaseTransitions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import Cause
from . import field as f
from .names import is_dns1123_subdomain
from .schema import INT32, MICRO_TIME, OBJECT_REFERENCE, STRING, TIME, Schema, kind_schema, obj
from .strategy import Obj, Strategy, as_dict, get

EVENT = kind_schema(
    involvedObject=OBJECT_REFERENCE,
    reason=STRING,
    message=STRING,
    source=obj(component=STRING, host=STRING),
    firstTimestamp=TIME,
    lastTimestamp=TIME,
    count=INT32,
    type=STRING,
    eventTime=MICRO_TIME,
    series=obj(count=INT32, lastObservedTime=MICRO_TIME),
    action=STRING,
    related=OBJECT_REFERENCE,
    reportingComponent=STRING,
    reportingInstance=STRING,
)

LEASE = kind_schema(
    spec=obj(
        holderIdentity=STRING,
        leaseDurationSeconds=INT32,
        acquireTime=MICRO_TIME,
        renewTime=MICRO_TIME,
        leaseTransitions=INT32,
        strategy=STRING,
        preferredHolder=STRING,
    )
)

_INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")


class EventStrategy(Strategy):
    schema: ClassVar[Schema] = EVENT
    extra_field_labels = (
        *(f"involvedObject.{n}" for n in _INVOLVED),
        "reason",
        "reportingComponent",
        "source",
        "type",
    )

    def _validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        namespace = str(get(obj, "metadata", "namespace") or "")
        involved = str(get(obj, "involvedObject", "namespace") or "")
        if not obj.get("eventTime"):
            if not involved:
                if namespace not in ("", "default"):
                    causes.append(
                        f.invalid(
                            "involvedObject.namespace", involved, "does not match event.namespace"
                        )
                    )
            elif namespace != involved:
                causes.append(
                    f.invalid(
                        "involvedObject.namespace", involved, "does not match event.namespace"
                    )
                )
        causes += f.each("namespace", namespace, is_dns1123_subdomain(namespace))
        return causes

    def _field_labels(self, obj: Mapping[str, Any]) -> dict[str, str]:
        involved = as_dict(obj.get("involvedObject"))
        labels = {f"involvedObject.{n}": str(involved.get(n) or "") for n in _INVOLVED}
        source = str(get(obj, "source", "component") or obj.get("reportingComponent") or "")
        labels.update(
            reason=str(obj.get("reason") or ""),
            reportingComponent=str(obj.get("reportingComponent") or ""),
            source=source,
            type=str(obj.get("type") or ""),
        )
        return labels


class LeaseStrategy(Strategy):
    schema: ClassVar[Schema] = LEASE

    def _validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        duration = get(obj, "spec", "leaseDurationSeconds")
        if isinstance(duration, int) and duration <= 0:
            causes.append(
                f.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
            )
        causes += f.nonnegative("spec.leaseTransitions", get(obj, "spec", "leaseTransitions"))
        return causes
