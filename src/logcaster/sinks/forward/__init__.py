"""Forward groups (SPEC §5): copies of the event stream sent to other collectors,
with primaries and backups, breakers, a disk spool and dead letters.

`group.py` is the sink the pipeline sees (`SinkGroup`); `sender.py` moves its
chunks (`chunks.py`) to its members (`members.py`, one `transports.py` sink
each, guarded by `resilience.py`); `spool.py` is the disk spool the group
reaches through `group_spool.py`; `deadletter.py` keeps what receivers refuse;
`target.py` checks a destination URL (also for config validation).
"""
