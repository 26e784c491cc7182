"""Secrets an embedded default keeps in its data directory (the master key), created once."""

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path


def load_or_create_secret(
    path: Path, generate: Callable[[], str] = lambda: secrets.token_urlsafe(48)
) -> str:
    """An embedded default's secret: generated once, kept owner-readable only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            secret = path.read_text().strip()
            if secret:
                return secret
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty") from None
    secret = generate()
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    return secret
