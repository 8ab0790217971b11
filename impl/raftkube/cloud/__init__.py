"""The simulated cloud provider and the cloud-controller-manager that drives it.

:mod:`.provider` is the cloud's state (instances, routes, load balancers with addresses from a
range in 127.0.0.0/8); :mod:`.server` serves it over HTTP, slow or failing on demand;
:mod:`.client` is how the controllers reach it. The controllers, built on
:mod:`raftkube.controllers`' informers and work queues: :mod:`.nodes` (nodes initialized from
their instance, nodes deleted when it is gone), :mod:`.routes` (a route per node pod CIDR),
:mod:`.services` (a load balancer per LoadBalancer Service). :mod:`.manager` runs them under
the ``cloud-controller-manager`` Lease; :mod:`.cli` is ``raftkube cloud-controller-manager``
and ``raftkube cloud-provider``.

The controllers reach the API server only through the REST client and the cloud only through
:class:`~raftkube.cloud.client.CloudClient`; only the cloud's own server uses the API server's
HTTP layer, as a plain HTTP/1.1 server.
"""
