"""The Raft model: state, events (the vocabulary the implementation reports in), actions and
invariants. See :mod:`.model` for the theory of operation."""
