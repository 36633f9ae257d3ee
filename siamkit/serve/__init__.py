"""A local web page to track objects in the browser (FastAPI app + one static page)."""
