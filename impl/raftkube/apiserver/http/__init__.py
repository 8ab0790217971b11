"""The API server's HTTP layer: HTTP/1.1 (h11) on Trio streams, TLS with optional client
certificates. It turns bytes into :class:`~raftkube.apiserver.request.Request` objects and
responses back into bytes, and knows nothing of Kubernetes beyond the ``Status`` body of its
own errors."""

from raftkube.apiserver.http.server import DEFAULT_MAX_BODY, HTTPServer
from raftkube.apiserver.http.tls import server_ssl_context

__all__ = ["DEFAULT_MAX_BODY", "HTTPServer", "server_ssl_context"]
