"""The HTTP front end: the listener (server.py) and the endpoints mounted on it."""
