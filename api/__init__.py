"""newsrag's HTTP API: a thin FastAPI layer over `rag.Archive`."""
