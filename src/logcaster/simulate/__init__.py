"""`logcaster simulate` (SPEC §13): realistic microservice logs for demos, tests and load.

Modules by job: `catalog` (services, scenarios, messages), `traces` (Java and
Python stack traces), `flows` (seed 004's payment flow), `generator` (the
seeded event stream), `formats` (text, JSON, RFC 5424), `outputs` (stdout,
file, TCP, syslog, with reconnects), `runner` (pacing, progress, summary).
"""

from logcaster.simulate.generator import Generator, SimEvent, level_weights
from logcaster.simulate.runner import Options, run

__all__ = ["Generator", "Options", "SimEvent", "level_weights", "run"]
