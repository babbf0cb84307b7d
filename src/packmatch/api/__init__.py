"""The HTTP edge (FastAPI): thin handlers that call a service and map the result."""
