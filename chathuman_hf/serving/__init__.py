"""Serving: the FastAPI chat app (web page, per-session chat API, OpenAI-compatible endpoint).

The top layer: may import every other package.
"""

from chathuman_hf.serving.app import create_app
from chathuman_hf.serving.store import SessionStore

__all__ = ["SessionStore", "create_app"]
