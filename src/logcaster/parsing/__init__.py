"""Turning text into events, in one place (SPEC §3).

Every part that reads log formats imports them from here:

- `multiline.py` and `trace_lines.py`: which lines make one event (stack traces
  of every common language, seed records, operators' rules from
  `user_rules.py`); the TCP framer (`pipeline/framing.py`) runs them per read.
- `parse.py` and `syslog.py`: the full parser, one text to one `Event`, run
  when a reader first needs a batch's structure (`pipeline/batch.py`).
- `extract.py` and `line_shapes.py`: the bulk extractor, time, level and
  service of a whole chunk at C and numpy speed, exact with the full parser
  (which it falls back to for what its fast path cannot prove); the store's
  indexer runs it.
- `levels.py`: the level reader the queue's sample policy uses, the
  extractor's level column.
- `codes.py` and `formats.py`: what the readers share: the level and
  service codes of the index columns, syslog's severity-to-level table.
"""
