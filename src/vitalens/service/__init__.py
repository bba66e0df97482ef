"""The clinical service: ``ops`` (operations, no FastAPI), ``api`` (thin routers), ``jobs`` (analysis queue)."""
