"""``rag serve``: an OpenAI-compatible HTTP API and a web page over one index.

* :mod:`rag.serve.app`: the FastAPI application (:func:`create_app`): routes, auth, limits, errors.
* :mod:`rag.serve.generation`: the LLM as one shared resource: one answer at a time, a bounded queue,
  cancellation between tokens, deadlines.
* :mod:`rag.serve.live`: index reloads when ``rag ingest`` publishes a new generation.
* :mod:`rag.serve.schemas`: the OpenAI request/response shapes (pydantic).
* ``static/index.html``: the page (plain JavaScript, no build step).

Importing this package imports FastAPI; the CLI imports it only when ``rag serve`` runs.
"""

from __future__ import annotations

from rag.serve.app import create_app

__all__ = ["create_app"]
