"""``k8s.io/apimachinery``: meta/v1 (object metadata, selectors, times, DeleteOptions),
``util/intstr`` and ``api/resource``.

``Time`` and ``MicroTime`` are the wire's ``Timestamp``; ``IntOrString``, ``Quantity``,
``FieldsV1`` and the review kinds' ``ExtraValue`` have JSON forms of their own, which the
decoder gives them (:mod:`raftkube.apiserver.protobuf.decode`). A ``Timestamp``'s seconds are
kept at zero: the wire leaves out an unset time altogether, so a present zero means 1970.
"""

from __future__ import annotations

from raftkube.apiserver.protobuf.schema import parse_table

TABLE = parse_table(
    """
ObjectMeta:
  1 name string; 2 generateName string; 3 namespace string; 4 selfLink string; 5 uid string
  6 resourceVersion string; 7 generation int64; 8 creationTimestamp Time
  9 deletionTimestamp Time; 10 deletionGracePeriodSeconds int64!; 11 labels {string}
  12 annotations {string}; 13 ownerReferences OwnerReference*; 14 finalizers string*
  17 managedFields ManagedFieldsEntry*
OwnerReference:
  5 apiVersion string!; 1 kind string!; 3 name string!; 4 uid string!; 6 controller bool!
  7 blockOwnerDeletion bool!
ManagedFieldsEntry:
  1 manager string; 2 operation string; 3 apiVersion string; 4 time Time; 6 fieldsType string
  7 fieldsV1 FieldsV1; 8 subresource string
FieldsV1:
  1 Raw bytes
LabelSelector:
  1 matchLabels {string}; 2 matchExpressions LabelSelectorRequirement*
LabelSelectorRequirement:
  1 key string!; 2 operator string!; 3 values string*
FieldSelectorRequirement:
  1 key string!; 2 operator string!; 3 values string*
Condition:
  1 type string!; 2 status string!; 3 observedGeneration int64; 4 lastTransitionTime Time
  5 reason string!; 6 message string!
Time:
  1 seconds int64!; 2 nanos int32
MicroTime:
  1 seconds int64!; 2 nanos int32
DeleteOptions:
  1 gracePeriodSeconds int64!; 2 preconditions Preconditions; 3 orphanDependents bool!
  4 propagationPolicy string!; 5 dryRun string*
  6 ignoreStoreReadErrorWithClusterBreakingPotential bool!
Preconditions:
  1 uid string!; 2 resourceVersion string!
IntOrString:
  1 type int64; 2 intVal int32; 3 strVal string
Quantity:
  1 string string
"""
)
