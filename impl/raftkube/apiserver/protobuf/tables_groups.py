"""The named groups' kinds: ``apps/v1`` (Deployments, ReplicaSets), ``rbac.authorization.k8s.io
/v1``, ``authorization.k8s.io/v1`` and ``authentication.k8s.io/v1`` (the reviews, TokenRequest),
``coordination.k8s.io/v1`` (Lease), ``autoscaling/v1`` (Scale) and ``policy/v1`` (Eviction).

``ExtraValue`` is declared in both review groups with the same single field; one entry serves
both. ``TokenRequestSpec``'s attestations, newer than kubectl 1.32, are not in the table.
"""

from __future__ import annotations

from raftkube.apiserver.protobuf.schema import parse_table

TABLE = parse_table(
    """
Deployment:
  1 metadata ObjectMeta; 2 spec DeploymentSpec; 3 status DeploymentStatus
DeploymentSpec:
  1 replicas int32!; 2 selector LabelSelector; 3 template PodTemplateSpec
  4 strategy DeploymentStrategy; 5 minReadySeconds int32; 6 revisionHistoryLimit int32!
  7 paused bool; 9 progressDeadlineSeconds int32!
DeploymentStrategy:
  1 type string; 2 rollingUpdate RollingUpdateDeployment
RollingUpdateDeployment:
  1 maxUnavailable IntOrString; 2 maxSurge IntOrString
DeploymentStatus:
  1 observedGeneration int64; 2 replicas int32; 3 updatedReplicas int32
  7 readyReplicas int32; 4 availableReplicas int32; 5 unavailableReplicas int32
  9 terminatingReplicas int32!; 6 conditions DeploymentCondition*; 8 collisionCount int32!
DeploymentCondition:
  1 type string!; 2 status string!; 6 lastUpdateTime Time; 7 lastTransitionTime Time
  4 reason string; 5 message string
ReplicaSet:
  1 metadata ObjectMeta; 2 spec ReplicaSetSpec; 3 status ReplicaSetStatus
ReplicaSetSpec:
  1 replicas int32!; 4 minReadySeconds int32; 2 selector LabelSelector
  3 template PodTemplateSpec
ReplicaSetStatus:
  1 replicas int32!; 2 fullyLabeledReplicas int32; 4 readyReplicas int32
  5 availableReplicas int32; 7 terminatingReplicas int32!; 3 observedGeneration int64
  6 conditions ReplicaSetCondition*
ReplicaSetCondition:
  1 type string!; 2 status string!; 3 lastTransitionTime Time; 4 reason string
  5 message string
Role:
  1 metadata ObjectMeta; 2 rules PolicyRule*
ClusterRole:
  1 metadata ObjectMeta; 2 rules PolicyRule*; 3 aggregationRule AggregationRule
AggregationRule:
  1 clusterRoleSelectors LabelSelector*
PolicyRule:
  1 verbs string*; 2 apiGroups string*; 3 resources string*; 4 resourceNames string*
  5 nonResourceURLs string*
RoleBinding:
  1 metadata ObjectMeta; 2 subjects Subject*; 3 roleRef RoleRef
ClusterRoleBinding:
  1 metadata ObjectMeta; 2 subjects Subject*; 3 roleRef RoleRef
Subject:
  1 kind string!; 2 apiGroup string; 3 name string!; 4 namespace string
RoleRef:
  1 apiGroup string!; 2 kind string!; 3 name string!
SelfSubjectAccessReview:
  1 metadata ObjectMeta; 2 spec SelfSubjectAccessReviewSpec
  3 status SubjectAccessReviewStatus
SelfSubjectAccessReviewSpec:
  1 resourceAttributes ResourceAttributes; 2 nonResourceAttributes NonResourceAttributes
SubjectAccessReview:
  1 metadata ObjectMeta; 2 spec SubjectAccessReviewSpec; 3 status SubjectAccessReviewStatus
LocalSubjectAccessReview:
  1 metadata ObjectMeta; 2 spec SubjectAccessReviewSpec; 3 status SubjectAccessReviewStatus
SubjectAccessReviewSpec:
  1 resourceAttributes ResourceAttributes; 2 nonResourceAttributes NonResourceAttributes
  3 user string; 4 groups string*; 5 extra {ExtraValue}; 6 uid string
ResourceAttributes:
  1 namespace string; 2 verb string; 3 group string; 4 version string; 5 resource string
  6 subresource string; 7 name string; 8 fieldSelector FieldSelectorAttributes
  9 labelSelector LabelSelectorAttributes
FieldSelectorAttributes:
  1 rawSelector string; 2 requirements FieldSelectorRequirement*
LabelSelectorAttributes:
  1 rawSelector string; 2 requirements LabelSelectorRequirement*
NonResourceAttributes:
  1 path string; 2 verb string
SubjectAccessReviewStatus:
  1 allowed bool!; 4 denied bool; 2 reason string; 3 evaluationError string
SelfSubjectRulesReview:
  1 metadata ObjectMeta; 2 spec SelfSubjectRulesReviewSpec; 3 status SubjectRulesReviewStatus
SelfSubjectRulesReviewSpec:
  1 namespace string
SubjectRulesReviewStatus:
  1 resourceRules ResourceRule*; 2 nonResourceRules NonResourceRule*; 3 incomplete bool!
  4 evaluationError string
ResourceRule:
  1 verbs string*; 2 apiGroups string*; 3 resources string*; 4 resourceNames string*
NonResourceRule:
  1 verbs string*; 2 nonResourceURLs string*
ExtraValue:
  1 items string*
SelfSubjectReview:
  1 metadata ObjectMeta; 2 status SelfSubjectReviewStatus
SelfSubjectReviewStatus:
  1 userInfo UserInfo
UserInfo:
  1 username string; 2 uid string; 3 groups string*; 4 extra {ExtraValue}
TokenRequest:
  1 metadata ObjectMeta; 2 spec TokenRequestSpec; 3 status TokenRequestStatus
TokenRequestSpec:
  1 audiences string*; 4 expirationSeconds int64!; 3 boundObjectRef BoundObjectReference
BoundObjectReference:
  1 kind string; 2 apiVersion string; 3 name string; 4 uid string
TokenRequestStatus:
  1 token string!; 2 expirationTimestamp Time
TokenReview:
  1 metadata ObjectMeta; 2 spec TokenReviewSpec; 3 status TokenReviewStatus
TokenReviewSpec:
  1 token string; 2 audiences string*
TokenReviewStatus:
  1 authenticated bool; 2 user UserInfo; 4 audiences string*; 3 error string
Lease:
  1 metadata ObjectMeta; 2 spec LeaseSpec
LeaseSpec:
  1 holderIdentity string!; 2 leaseDurationSeconds int32!; 3 acquireTime MicroTime
  4 renewTime MicroTime; 5 leaseTransitions int32!; 6 strategy string!
  7 preferredHolder string!
Scale:
  1 metadata ObjectMeta; 2 spec ScaleSpec; 3 status ScaleStatus
ScaleSpec:
  1 replicas int32
ScaleStatus:
  1 replicas int32!; 2 selector string
Eviction:
  1 metadata ObjectMeta; 2 deleteOptions DeleteOptions
"""
)
