"""LogCaster: a log collection and query server.

Data flows sources -> pipeline (framing, queue) -> sinks -> query -> front ends;
`logcaster.app` holds the component table that wires them.
"""

from logcaster.config import Config, load_config
from logcaster.event import Event
from logcaster.exceptions import ConfigError, LogCasterError, QuerySyntaxError
from logcaster.pipeline.batch import Batch

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "Config",
    "ConfigError",
    "Event",
    "LogCasterError",
    "QuerySyntaxError",
    "__version__",
    "load_config",
]
