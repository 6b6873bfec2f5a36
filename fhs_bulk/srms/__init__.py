"""SRMS: the API schemas shared by client and server, the client, and the mock service."""
