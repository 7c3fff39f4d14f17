"""The data directory as a whole: its format version and `logcaster migrate DIR`.

docs/data-format.md lists every format a LogCaster release wrote and what
marks each one. `marker` reads and writes the small FORMAT files, `versions`
tells which format a directory holds (and refuses the server an older or
newer one), `lc1` reads the first block format, `convert` rewrites one
segment file, `migrate` runs a whole upgrade; `migrate_cli` holds the
command's flags (light, imported at every start) and `migrate_main` runs it.
"""
