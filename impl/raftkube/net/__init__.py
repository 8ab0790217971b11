"""Peer networking for Raft: message codec, length-prefixed framing and the transport.

The Raft driver depends only on :class:`raftkube.net.transport.Transport`; the TCP
implementation lives beside it and the deterministic simulator supplies its own.
"""
