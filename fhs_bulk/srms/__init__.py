"""SRMS: the API schemas shared by client and server, the client, and the mock service."""

API_PREFIX = "/v1"  # here, not in ``schemas``: the client builds its paths without loading the models
