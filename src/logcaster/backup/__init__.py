"""`logcaster backup` and `logcaster restore` (docs/backup.md).

A backup pins every file of the data directory (and of the files the
configuration keeps outside it) with hard links in one quick pass, cuts
active.log at its last whole block and the store index at the same id, and
streams the pinned bytes into a tar (optionally zstd) with a manifest of
checksums last. A restore verifies every checksum into a staging directory
beside the target before anything reaches it.

- `pin.py`: the staging directory of hard links, one per tree.
- `plan.py`: what goes into the archive, and the consistent cut.
- `index_cut.py`: a segment's index cut at the snapshot id.
- `sources.py`: the trees and files a configuration names.
- `archive.py`: writing the tar stream (hashes, progress, zstd).
- `manifest.py`: the manifest's structure, and where each member is restored.
- `restore.py`: reading, verifying and placing an archive.
- `cli.py`: the two subcommands' flags and their one-line errors.
"""
