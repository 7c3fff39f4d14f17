"""Scale-out (SPEC §11, docs/scaleout-design.md): ingest nodes, Redis Streams,
writers and PostgreSQL."""
