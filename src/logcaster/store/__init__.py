"""The embedded store: field extraction, scanning and the index over the file sink's segments."""
