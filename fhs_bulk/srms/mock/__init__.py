"""The mock SRMS: FastAPI app, SQLite store, journey, catalogue, embedded runner.

Nothing on the client side imports this package; the session starts the embedded mock lazily."""
