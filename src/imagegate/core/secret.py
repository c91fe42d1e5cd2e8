"""The server secret that signs asset links: generated once, kept in the data dir (mode 0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create_secret(path: Path) -> bytes:
    """Read the secret at ``path``, creating it atomically with mode 0600 when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    value = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(value.hex())
    return value
