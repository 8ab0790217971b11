"""Control loops and client-go's machinery for them, in Trio.

The machinery (client-go's ``tools/cache``, ``util/workqueue`` and ``leaderelection`` in the
same shapes and names): :mod:`.reflector` lists and watches one collection into a cache,
:mod:`.informer` shares one reflector and cache among many event handlers and offers listers,
:mod:`.workqueue` holds the keys a controller must sync, and :mod:`.leaderelection` lets one of
several controller managers act at a time. Each controller is informers + a work queue +
``sync(key)`` (:mod:`.controller`), whose decision is a plain function of the cached objects
(and the time) beside it:

- workloads: :mod:`.replicaset` (ReplicaSets, and ReplicationControllers through
  :mod:`.replication`), with :mod:`.expectations` so a lagging cache does not over-create,
  :mod:`.ref_manager` for adoption and release, :mod:`.controller_utils` for pod control;
  :mod:`.deployment` (rolling update and Recreate, with :mod:`.deployment_util` and
  :mod:`.deployment_progress`); :mod:`.endpoints`; :mod:`.garbagecollector`;
- nodes: :mod:`.nodelifecycle` (health from heartbeats judged by the controller's own clock,
  :mod:`.nodehealth`, zone disruption and the rate limits of :mod:`.evictionqueue`) and
  :mod:`.tainteviction`;
- accounts and namespaces: :mod:`.serviceaccount`, :mod:`.tokens`, :mod:`.rootcacert`,
  :mod:`.namespace`. :mod:`.events` records Events as client-go does; :mod:`.credentials` gives each
controller its client (the manager's, or its own service account's). :mod:`.manager` runs
the enabled controllers under leader election; :mod:`.cli` is ``raftkube controller-manager``.

Every wait goes through the :class:`~raftkube.clock.Clock` passed in, and every task runs in a
nursery its caller owns.
"""

from raftkube.controllers.controller import RequeueAfter, Worker
from raftkube.controllers.informer import (
    Lister,
    ResourceEventHandler,
    ResourceEventHandlerFuncs,
    SharedIndexInformer,
    SharedInformerFactory,
)
from raftkube.controllers.leaderelection import (
    LeaderElectionConfig,
    LeaderElectionLost,
    LeaderElectionRecord,
    LeaderElector,
    LeaseLock,
)
from raftkube.controllers.listwatch import ListerWatcher, ListWatch
from raftkube.controllers.manager import run_controller_manager
from raftkube.controllers.reflector import Reflector
from raftkube.controllers.store import DeletedFinalStateUnknown, Indexer
from raftkube.controllers.workqueue import (
    DelayingQueue,
    RateLimitingQueue,
    ShutDown,
    WorkQueue,
    default_controller_rate_limiter,
)

__all__ = [
    "DelayingQueue",
    "DeletedFinalStateUnknown",
    "Indexer",
    "LeaderElectionConfig",
    "LeaderElectionLost",
    "LeaderElectionRecord",
    "LeaderElector",
    "LeaseLock",
    "ListWatch",
    "Lister",
    "ListerWatcher",
    "RateLimitingQueue",
    "Reflector",
    "RequeueAfter",
    "ResourceEventHandler",
    "ResourceEventHandlerFuncs",
    "SharedIndexInformer",
    "SharedInformerFactory",
    "ShutDown",
    "WorkQueue",
    "Worker",
    "default_controller_rate_limiter",
    "run_controller_manager",
]
