"""Running raftkube as operating-system processes: ``raftkube member`` runs one member and
``raftkube up`` starts and supervises a local cluster of them.

Both commands are also reachable as ``python -m raftkube.cluster member|up ...``, which needs
no installed entry points; ``raftkube up`` launches its members that way so it works from a
source checkout whose metadata predates these commands.
"""
