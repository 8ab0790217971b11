"""``rkctl``: an etcdctl-v3-compatible command line for raftkube clusters.

The commands, flags and output formats follow ``etcdctl`` so that scripts and muscle memory
written for etcd keep working against raftkube; :func:`main` is the console entry point and
:func:`run` the same thing as a coroutine, for callers (and tests) already inside Trio.
"""

from raftkube.rkctl.cli import main, run

__all__ = ["main", "run"]
