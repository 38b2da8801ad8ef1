"""Serving: the REST API (FastAPI), its Ray Serve deployments, Triton export and the job store."""
