"""The one digest of configs, datasets and runs: two equal payloads, wherever and whenever hashed, agree."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def config_digest(payload: Any) -> str:
    """16 hex digits of SHA-256 over `payload` as canonical JSON."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
