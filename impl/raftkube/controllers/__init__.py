"""Control loops and client-go's machinery for them, in Trio.

The machinery (client-go's ``tools/cache``, ``util/workqueue`` and ``leaderelection`` in the
same shapes and names): :mod:`.reflector` lists and watches one collection into a cache,
:mod:`.informer` shares one reflector and cache among many event handlers and offers listers,
:mod:`.workqueue` holds the keys a controller must sync, and :mod:`.leaderelection` lets one of
several controller managers act at a time. Each controller (:mod:`.serviceaccount`,
:mod:`.namespace`, :mod:`.rootcacert`) is informers + a work queue + ``sync(key)``, whose
decision is a plain function of the cached objects (and the time) beside it. :mod:`.manager`
runs the enabled controllers under leader election; :mod:`.cli` is
``raftkube controller-manager``.

Every wait goes through the :class:`~raftkube.clock.Clock` passed in, and every task runs in a
nursery its caller owns.
"""
