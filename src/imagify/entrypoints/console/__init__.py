"""The web console: server-rendered pages on the same use cases as the HTTP API."""
