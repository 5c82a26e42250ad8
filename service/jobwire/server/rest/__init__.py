"""The REST API: FastAPI routes that translate to and from the service core."""
