"""The client wire codec: KV requests and responses as plain msgpack-able maps.

Every map uses etcd's ``etcdserverpb`` field names (``key``, ``range_end``, ``prev_kv``,
``request_put``, ``ID``, ``TTL``, ``grantedTTL`` ...). Encoding always writes every field, so
the maps are canonical; decoding is strict: an unknown field, a missing required field or a
value of the wrong type raises :class:`WireError` naming the field's path (``body.compare[0].
target``), so a bad client is told exactly what is wrong and nothing half-decoded reaches the
state machine.

One module per job, all re-exported here (callers use ``wire.encode_request`` and so on):

* :mod:`.reader`: :class:`WireError` and the strict :class:`FieldReader` every decoder uses;
* :mod:`.records`: key-values, events, the response header, KV errors;
* :mod:`.request_codec`: KV request bodies;
* :mod:`.response_codec`: KV response bodies;
* :mod:`.frames`: the ops, the request frame, the ok and error answers.

See ``docs/client-protocol.md`` for the frames that carry these maps.
"""

from raftkube.api.wire import frames, reader, records, request_codec, response_codec
from raftkube.api.wire.frames import (
    KV_OPS,
    MAX_REQUEST_BYTES,
    OPS,
    REQUEST_TOO_LARGE,
    RequestFrame,
    decode_request_frame,
    error_frame,
    ok_frame,
)
from raftkube.api.wire.reader import FieldReader, WireError
from raftkube.api.wire.records import (
    Map,
    WireHeader,
    decode_event,
    decode_header,
    decode_kv,
    decode_kv_error,
    decode_kvs,
    encode_event,
    encode_header,
    encode_kv,
    encode_kv_error,
    is_kv_error_code,
)
from raftkube.api.wire.request_codec import decode_request, encode_request, request_op
from raftkube.api.wire.response_codec import decode_response, encode_response

__all__ = [
    "KV_OPS",
    "MAX_REQUEST_BYTES",
    "OPS",
    "REQUEST_TOO_LARGE",
    "FieldReader",
    "Map",
    "RequestFrame",
    "WireError",
    "WireHeader",
    "decode_event",
    "decode_header",
    "decode_kv",
    "decode_kv_error",
    "decode_kvs",
    "decode_request",
    "decode_request_frame",
    "decode_response",
    "encode_event",
    "encode_header",
    "encode_kv",
    "encode_kv_error",
    "encode_request",
    "encode_response",
    "error_frame",
    "frames",
    "is_kv_error_code",
    "ok_frame",
    "reader",
    "records",
    "request_codec",
    "request_op",
    "response_codec",
]
