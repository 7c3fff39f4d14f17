"""LogCaster: a log collection and query server.

Data flows sources -> pipeline (framing, queue) -> sinks -> query -> front ends;
`logcaster.app` holds the component table that wires them.

This package imports nothing: the indexer and token-index processes
(`python -m logcaster.store...`) load only the modules they use
(docs/memory.md).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
