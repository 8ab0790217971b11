"""The schema of core/v1 Pod, its spec and status, and of a pod template (see :mod:`.schema`).

Field names and patch merge keys are upstream's (``k8s.io/api/core/v1/types.go``): containers,
init containers, volumes, env and image pull secrets merge by ``name``, ports by
``containerPort``, volume mounts by ``mountPath``, conditions by ``type``, pod IPs by ``ip``.
Volume sources this control plane has no use for (cloud disks, iSCSI, ...) are accepted
free-form rather than spelled out.
"""

from __future__ import annotations

from .schema import (
    BOOLEAN,
    FREE_FORM,
    INT32,
    INT64,
    INT_OR_STRING,
    LABEL_SELECTOR,
    OBJECT_META,
    OBJECT_REFERENCE,
    QUANTITY,
    QUANTITY_MAP,
    STRING,
    STRING_MAP,
    STRINGS,
    TIME,
    Schema,
    arr,
    conditions,
    kind_schema,
    obj,
)

_NAME_REF = obj(name=STRING)
_OPTIONAL_NAME_REF = obj(name=STRING, optional=BOOLEAN)
_KEY_REF = obj(("key",), name=STRING, key=STRING, optional=BOOLEAN)
_FIELD_REF = obj(("fieldPath",), apiVersion=STRING, fieldPath=STRING)
_RESOURCE_FIELD_REF = obj(("resource",), containerName=STRING, resource=STRING, divisor=QUANTITY)
_KEY_TO_PATH = obj(("key", "path"), key=STRING, path=STRING, mode=INT32)
_KEYS_TO_PATHS = arr(_KEY_TO_PATH)

ENV_VAR = obj(
    ("name",),
    name=STRING,
    value=STRING,
    valueFrom=obj(
        fieldRef=_FIELD_REF,
        resourceFieldRef=_RESOURCE_FIELD_REF,
        configMapKeyRef=_KEY_REF,
        secretKeyRef=_KEY_REF,
    ),
)
ENV_FROM = obj(prefix=STRING, configMapRef=_OPTIONAL_NAME_REF, secretRef=_OPTIONAL_NAME_REF)

CONTAINER_PORT = obj(
    ("containerPort",),
    name=STRING,
    hostPort=INT32,
    containerPort=INT32,
    protocol=STRING,
    hostIP=STRING,
)

_HTTP_GET = obj(
    ("port",),
    path=STRING,
    port=INT_OR_STRING,
    host=STRING,
    scheme=STRING,
    httpHeaders=arr(obj(("name", "value"), name=STRING, value=STRING)),
)
_TCP_SOCKET = obj(("port",), port=INT_OR_STRING, host=STRING)
_EXEC = obj(command=STRINGS)
_GRPC = obj(("port",), port=INT32, service=STRING)

PROBE = obj(
    exec_=_EXEC,
    httpGet=_HTTP_GET,
    tcpSocket=_TCP_SOCKET,
    grpc=_GRPC,
    initialDelaySeconds=INT32,
    timeoutSeconds=INT32,
    periodSeconds=INT32,
    successThreshold=INT32,
    failureThreshold=INT32,
    terminationGracePeriodSeconds=INT64,
)
_LIFECYCLE_HANDLER = obj(
    exec_=_EXEC, httpGet=_HTTP_GET, tcpSocket=_TCP_SOCKET, sleep=obj(("seconds",), seconds=INT64)
)

_SE_LINUX = obj(user=STRING, role=STRING, type=STRING, level=STRING)
_WINDOWS = obj(
    gmsaCredentialSpecName=STRING,
    gmsaCredentialSpec=STRING,
    runAsUserName=STRING,
    hostProcess=BOOLEAN,
)
_PROFILE = obj(("type",), type=STRING, localhostProfile=STRING)

SECURITY_CONTEXT = obj(
    capabilities=obj(add=STRINGS, drop=STRINGS),
    privileged=BOOLEAN,
    seLinuxOptions=_SE_LINUX,
    windowsOptions=_WINDOWS,
    runAsUser=INT64,
    runAsGroup=INT64,
    runAsNonRoot=BOOLEAN,
    readOnlyRootFilesystem=BOOLEAN,
    allowPrivilegeEscalation=BOOLEAN,
    procMount=STRING,
    seccompProfile=_PROFILE,
    appArmorProfile=_PROFILE,
)

POD_SECURITY_CONTEXT = obj(
    seLinuxOptions=_SE_LINUX,
    windowsOptions=_WINDOWS,
    runAsUser=INT64,
    runAsGroup=INT64,
    runAsNonRoot=BOOLEAN,
    supplementalGroups=arr(INT64),
    supplementalGroupsPolicy=STRING,
    fsGroup=INT64,
    sysctls=arr(obj(("name", "value"), name=STRING, value=STRING)),
    fsGroupChangePolicy=STRING,
    seccompProfile=_PROFILE,
    appArmorProfile=_PROFILE,
    seLinuxChangePolicy=STRING,
)

RESOURCE_REQUIREMENTS = obj(
    limits=QUANTITY_MAP,
    requests=QUANTITY_MAP,
    claims=arr(obj(("name",), name=STRING, request=STRING), "name"),
)

_CONTAINER_FIELDS: dict[str, Schema] = {
    "name": STRING,
    "image": STRING,
    "command": STRINGS,
    "args": STRINGS,
    "workingDir": STRING,
    "ports": arr(CONTAINER_PORT, "containerPort"),
    "envFrom": arr(ENV_FROM),
    "env": arr(ENV_VAR, "name"),
    "resources": RESOURCE_REQUIREMENTS,
    "resizePolicy": arr(obj(resourceName=STRING, restartPolicy=STRING)),
    "restartPolicy": STRING,
    "volumeMounts": arr(
        obj(
            ("name", "mountPath"),
            name=STRING,
            readOnly=BOOLEAN,
            recursiveReadOnly=STRING,
            mountPath=STRING,
            subPath=STRING,
            mountPropagation=STRING,
            subPathExpr=STRING,
        ),
        "mountPath",
    ),
    "volumeDevices": arr(obj(name=STRING, devicePath=STRING), "devicePath"),
    "livenessProbe": PROBE,
    "readinessProbe": PROBE,
    "startupProbe": PROBE,
    "lifecycle": obj(postStart=_LIFECYCLE_HANDLER, preStop=_LIFECYCLE_HANDLER, stopSignal=STRING),
    "terminationMessagePath": STRING,
    "terminationMessagePolicy": STRING,
    "imagePullPolicy": STRING,
    "securityContext": SECURITY_CONTEXT,
    "stdin": BOOLEAN,
    "stdinOnce": BOOLEAN,
    "tty": BOOLEAN,
}
CONTAINER = obj(("name",), **_CONTAINER_FIELDS)
EPHEMERAL_CONTAINER = obj(("name",), targetContainerName=STRING, **_CONTAINER_FIELDS)

_DOWNWARD_ITEMS = arr(
    obj(
        ("path",),
        path=STRING,
        fieldRef=_FIELD_REF,
        resourceFieldRef=_RESOURCE_FIELD_REF,
        mode=INT32,
    )
)
_PROJECTED_SOURCE = obj(
    secret=obj(name=STRING, items=_KEYS_TO_PATHS, optional=BOOLEAN),
    configMap=obj(name=STRING, items=_KEYS_TO_PATHS, optional=BOOLEAN),
    downwardAPI=obj(items=_DOWNWARD_ITEMS),
    serviceAccountToken=obj(("path",), audience=STRING, expirationSeconds=INT64, path=STRING),
    clusterTrustBundle=FREE_FORM,
)
_FREE_FORM_SOURCES = [
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "ephemeral",
]

VOLUME = obj(
    ("name",),
    name=STRING,
    hostPath=obj(("path",), path=STRING, type=STRING),
    emptyDir=obj(medium=STRING, sizeLimit=QUANTITY),
    secret=obj(secretName=STRING, items=_KEYS_TO_PATHS, defaultMode=INT32, optional=BOOLEAN),
    nfs=obj(("server", "path"), server=STRING, path=STRING, readOnly=BOOLEAN),
    persistentVolumeClaim=obj(("claimName",), claimName=STRING, readOnly=BOOLEAN),
    downwardAPI=obj(items=_DOWNWARD_ITEMS, defaultMode=INT32),
    configMap=obj(name=STRING, items=_KEYS_TO_PATHS, defaultMode=INT32, optional=BOOLEAN),
    projected=obj(sources=arr(_PROJECTED_SOURCE), defaultMode=INT32),
    csi=obj(
        ("driver",),
        driver=STRING,
        readOnly=BOOLEAN,
        fsType=STRING,
        volumeAttributes=STRING_MAP,
        nodePublishSecretRef=_NAME_REF,
    ),
    image=obj(reference=STRING, pullPolicy=STRING),
    **dict.fromkeys(_FREE_FORM_SOURCES, FREE_FORM),
)
VOLUME_SOURCES = frozenset(VOLUME["properties"]) - {"name"}
"""Every field of a Volume that names its source (a volume must have exactly one)."""

_NODE_SELECTOR_REQUIREMENT = obj(("key", "operator"), key=STRING, operator=STRING, values=STRINGS)
NODE_SELECTOR_TERM = obj(
    matchExpressions=arr(_NODE_SELECTOR_REQUIREMENT),
    matchFields=arr(_NODE_SELECTOR_REQUIREMENT),
)
_POD_AFFINITY_TERM = obj(
    ("topologyKey",),
    labelSelector=LABEL_SELECTOR,
    namespaces=STRINGS,
    topologyKey=STRING,
    namespaceSelector=LABEL_SELECTOR,
    matchLabelKeys=STRINGS,
    mismatchLabelKeys=STRINGS,
)
_POD_AFFINITY = obj(
    requiredDuringSchedulingIgnoredDuringExecution=arr(_POD_AFFINITY_TERM),
    preferredDuringSchedulingIgnoredDuringExecution=arr(
        obj(("weight", "podAffinityTerm"), weight=INT32, podAffinityTerm=_POD_AFFINITY_TERM)
    ),
)
AFFINITY = obj(
    nodeAffinity=obj(
        requiredDuringSchedulingIgnoredDuringExecution=obj(
            ("nodeSelectorTerms",), nodeSelectorTerms=arr(NODE_SELECTOR_TERM)
        ),
        preferredDuringSchedulingIgnoredDuringExecution=arr(
            obj(("weight", "preference"), weight=INT32, preference=NODE_SELECTOR_TERM)
        ),
    ),
    podAffinity=_POD_AFFINITY,
    podAntiAffinity=_POD_AFFINITY,
)

TOLERATION = obj(key=STRING, operator=STRING, value=STRING, effect=STRING, tolerationSeconds=INT64)

POD_SPEC = obj(
    ("containers",),
    volumes=arr(VOLUME, "name", "merge,retainKeys"),
    initContainers=arr(CONTAINER, "name"),
    containers=arr(CONTAINER, "name"),
    ephemeralContainers=arr(EPHEMERAL_CONTAINER, "name"),
    restartPolicy=STRING,
    terminationGracePeriodSeconds=INT64,
    activeDeadlineSeconds=INT64,
    dnsPolicy=STRING,
    nodeSelector=STRING_MAP,
    serviceAccountName=STRING,
    serviceAccount=STRING,
    automountServiceAccountToken=BOOLEAN,
    nodeName=STRING,
    hostNetwork=BOOLEAN,
    hostPID=BOOLEAN,
    hostIPC=BOOLEAN,
    shareProcessNamespace=BOOLEAN,
    securityContext=POD_SECURITY_CONTEXT,
    imagePullSecrets=arr(_NAME_REF, "name"),
    hostname=STRING,
    subdomain=STRING,
    affinity=AFFINITY,
    schedulerName=STRING,
    tolerations=arr(TOLERATION),
    hostAliases=arr(obj(("ip",), ip=STRING, hostnames=STRINGS), "ip"),
    priorityClassName=STRING,
    priority=INT32,
    dnsConfig=obj(
        nameservers=STRINGS,
        searches=STRINGS,
        options=arr(obj(name=STRING, value=STRING)),
    ),
    readinessGates=arr(obj(("conditionType",), conditionType=STRING)),
    runtimeClassName=STRING,
    enableServiceLinks=BOOLEAN,
    preemptionPolicy=STRING,
    overhead=QUANTITY_MAP,
    topologySpreadConstraints=arr(
        obj(
            ("maxSkew", "topologyKey", "whenUnsatisfiable"),
            maxSkew=INT32,
            topologyKey=STRING,
            whenUnsatisfiable=STRING,
            labelSelector=LABEL_SELECTOR,
            minDomains=INT32,
            nodeAffinityPolicy=STRING,
            nodeTaintsPolicy=STRING,
            matchLabelKeys=STRINGS,
        ),
        "topologyKey",
    ),
    setHostnameAsFQDN=BOOLEAN,
    os=obj(("name",), name=STRING),
    hostUsers=BOOLEAN,
    schedulingGates=arr(obj(("name",), name=STRING), "name"),
    resourceClaims=arr(FREE_FORM, "name", "merge,retainKeys"),
    resources=RESOURCE_REQUIREMENTS,
)

_CONTAINER_STATE = obj(
    waiting=obj(reason=STRING, message=STRING),
    running=obj(startedAt=TIME),
    terminated=obj(
        ("exitCode",),
        exitCode=INT32,
        signal=INT32,
        reason=STRING,
        message=STRING,
        startedAt=TIME,
        finishedAt=TIME,
        containerID=STRING,
    ),
)
CONTAINER_STATUS = obj(
    ("name", "ready", "restartCount", "image", "imageID"),
    name=STRING,
    state=_CONTAINER_STATE,
    lastState=_CONTAINER_STATE,
    ready=BOOLEAN,
    restartCount=INT32,
    image=STRING,
    imageID=STRING,
    containerID=STRING,
    started=BOOLEAN,
    allocatedResources=QUANTITY_MAP,
    resources=RESOURCE_REQUIREMENTS,
    volumeMounts=arr(FREE_FORM, "mountPath"),
    user=FREE_FORM,
    allocatedResourcesStatus=arr(FREE_FORM, "name"),
    stopSignal=STRING,
)
_IPS = arr(obj(("ip",), ip=STRING), "ip")

POD_STATUS = obj(
    observedGeneration=INT64,
    phase=STRING,
    conditions=conditions("observedGeneration", "lastProbeTime"),
    message=STRING,
    reason=STRING,
    nominatedNodeName=STRING,
    hostIP=STRING,
    hostIPs=_IPS,
    podIP=STRING,
    podIPs=_IPS,
    startTime=TIME,
    initContainerStatuses=arr(CONTAINER_STATUS),
    containerStatuses=arr(CONTAINER_STATUS),
    qosClass=STRING,
    ephemeralContainerStatuses=arr(CONTAINER_STATUS),
    resize=STRING,
    resourceClaimStatuses=arr(FREE_FORM, "name", "merge,retainKeys"),
)

POD_TEMPLATE_SPEC = obj(metadata=OBJECT_META, spec=POD_SPEC)

POD = kind_schema(spec=POD_SPEC, status=POD_STATUS)

BINDING = kind_schema(target=OBJECT_REFERENCE)
