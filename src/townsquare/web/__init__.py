"""The single-page web UI: hand-written HTML, CSS and JS under ``static/`` (no build step, no
external URLs). The API app serves ``static/index.html`` at ``/`` and the folder at ``/static``."""
from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
