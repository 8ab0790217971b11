"""Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``), which
kubectl's typed clients send, read into the JSON objects the handlers take.

:mod:`.wire` reads the protobuf wire format, :mod:`.schema` and the ``tables_*`` modules hold
the message table, :mod:`.decode` walks a body with it. Responses stay JSON: client-go decodes
a response by its own Content-Type.
"""

from raftkube.apiserver.protobuf.decode import MEDIA_TYPE, decode_protobuf

__all__ = ["MEDIA_TYPE", "decode_protobuf"]
