"""``k8s.io/api/core/v1``: the kinds other than the pod template's tree (namespaces, config
maps, secrets, service accounts, pods, bindings, services, endpoints, events, nodes and
replication controllers).

Node status carries what the node lifecycle and the scheduler read (capacity, allocatable,
conditions, addresses, daemon endpoints, node info); its image lists, attached volumes,
runtime handlers, features and config status are not in the table.
"""

from __future__ import annotations

from raftkube.apiserver.protobuf.schema import parse_table

TABLE = parse_table(
    """
Namespace:
  1 metadata ObjectMeta; 2 spec NamespaceSpec; 3 status NamespaceStatus
NamespaceSpec:
  1 finalizers string*
NamespaceStatus:
  1 phase string; 2 conditions NamespaceCondition*
NamespaceCondition:
  1 type string!; 2 status string!; 4 lastTransitionTime Time; 5 reason string
  6 message string
ConfigMap:
  1 metadata ObjectMeta; 4 immutable bool!; 2 data {string}; 3 binaryData {bytes}
Secret:
  1 metadata ObjectMeta; 5 immutable bool!; 2 data {bytes}; 4 stringData {string}
  3 type string
ServiceAccount:
  1 metadata ObjectMeta; 2 secrets ObjectReference*
  3 imagePullSecrets LocalObjectReference*; 4 automountServiceAccountToken bool!
ObjectReference:
  1 kind string; 2 namespace string; 3 name string; 4 uid string; 5 apiVersion string
  6 resourceVersion string; 7 fieldPath string
Pod:
  1 metadata ObjectMeta; 2 spec PodSpec; 3 status PodStatus
Binding:
  1 metadata ObjectMeta; 2 target ObjectReference
ReplicationController:
  1 metadata ObjectMeta; 2 spec ReplicationControllerSpec
  3 status ReplicationControllerStatus
ReplicationControllerSpec:
  1 replicas int32!; 4 minReadySeconds int32; 2 selector {string}; 3 template PodTemplateSpec
ReplicationControllerStatus:
  1 replicas int32!; 2 fullyLabeledReplicas int32; 4 readyReplicas int32
  5 availableReplicas int32; 3 observedGeneration int64
  6 conditions ReplicationControllerCondition*
ReplicationControllerCondition:
  1 type string!; 2 status string!; 3 lastTransitionTime Time; 4 reason string
  5 message string
Service:
  1 metadata ObjectMeta; 2 spec ServiceSpec; 3 status ServiceStatus
ServiceSpec:
  1 ports ServicePort*; 2 selector {string}; 3 clusterIP string; 18 clusterIPs string*
  4 type string; 5 externalIPs string*; 7 sessionAffinity string; 8 loadBalancerIP string
  9 loadBalancerSourceRanges string*; 10 externalName string
  11 externalTrafficPolicy string; 12 healthCheckNodePort int32
  13 publishNotReadyAddresses bool; 14 sessionAffinityConfig SessionAffinityConfig
  19 ipFamilies string*; 17 ipFamilyPolicy string!; 20 allocateLoadBalancerNodePorts bool!
  21 loadBalancerClass string!; 22 internalTrafficPolicy string!
  23 trafficDistribution string!
ServicePort:
  1 name string; 2 protocol string; 6 appProtocol string!; 3 port int32!
  4 targetPort IntOrString; 5 nodePort int32
SessionAffinityConfig:
  1 clientIP ClientIPConfig
ClientIPConfig:
  1 timeoutSeconds int32!
ServiceStatus:
  1 loadBalancer LoadBalancerStatus; 2 conditions Condition*
LoadBalancerStatus:
  1 ingress LoadBalancerIngress*
LoadBalancerIngress:
  1 ip string; 2 hostname string; 3 ipMode string!; 4 ports PortStatus*
PortStatus:
  1 port int32!; 2 protocol string!; 3 error string!
Endpoints:
  1 metadata ObjectMeta; 2 subsets EndpointSubset*
EndpointSubset:
  1 addresses EndpointAddress*; 2 notReadyAddresses EndpointAddress*
  3 ports EndpointPort*
EndpointAddress:
  1 ip string!; 3 hostname string; 4 nodeName string!; 2 targetRef ObjectReference
EndpointPort:
  1 name string; 2 port int32!; 3 protocol string; 4 appProtocol string!
Event:
  1 metadata ObjectMeta; 2 involvedObject ObjectReference; 3 reason string
  4 message string; 5 source EventSource; 6 firstTimestamp Time; 7 lastTimestamp Time
  8 count int32; 9 type string; 10 eventTime MicroTime; 11 series EventSeries
  12 action string; 13 related ObjectReference; 14 reportingComponent string!
  15 reportingInstance string!
EventSource:
  1 component string; 2 host string
EventSeries:
  1 count int32; 2 lastObservedTime MicroTime
Node:
  1 metadata ObjectMeta; 2 spec NodeSpec; 3 status NodeStatus
NodeSpec:
  1 podCIDR string; 7 podCIDRs string*; 3 providerID string; 4 unschedulable bool
  5 taints Taint*; 6 configSource NodeConfigSource; 2 externalID string
NodeConfigSource:
  2 configMap ConfigMapNodeConfigSource
ConfigMapNodeConfigSource:
  1 namespace string!; 2 name string!; 3 uid string; 4 resourceVersion string
  5 kubeletConfigKey string!
Taint:
  1 key string!; 2 value string; 3 effect string!; 4 timeAdded Time
NodeStatus:
  1 capacity {Quantity}; 2 allocatable {Quantity}; 3 phase string
  4 conditions NodeCondition*; 5 addresses NodeAddress*
  6 daemonEndpoints NodeDaemonEndpoints; 7 nodeInfo NodeSystemInfo
NodeCondition:
  1 type string!; 2 status string!; 3 lastHeartbeatTime Time; 4 lastTransitionTime Time
  5 reason string; 6 message string
NodeAddress:
  1 type string!; 2 address string!
NodeDaemonEndpoints:
  1 kubeletEndpoint DaemonEndpoint
DaemonEndpoint:
  1 Port int32!
NodeSystemInfo:
  1 machineID string!; 2 systemUUID string!; 3 bootID string!; 4 kernelVersion string!
  5 osImage string!; 6 containerRuntimeVersion string!; 7 kubeletVersion string!
  8 kubeProxyVersion string!; 9 operatingSystem string!; 10 architecture string!
"""
)
