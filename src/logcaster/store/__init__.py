"""The embedded store: segment text scanning and field extraction (docs/store-design.md)."""
