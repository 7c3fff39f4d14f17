"""The embedded store (issue 5): index files, field extraction, text scanning."""
