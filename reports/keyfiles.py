"""Keys read from a setting, or in the embedded default from a file under var/ that is made on
first use (0600): the media key (intake/storage.py) and the audit key (audit.py)."""

import os
from collections.abc import Callable
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def key_text(encoded: str, key_file: str | Path | None, make: Callable[[], str], name: str) -> str:
    """The key's text: the setting's value when set; otherwise the file's, written with make()
    the first time (O_EXCL: two processes starting at once do not each write their own)."""
    if not encoded and key_file:
        key_file = Path(key_file)
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it meanwhile: read theirs
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(make())
        encoded = key_file.read_text().strip()
    if not encoded:
        raise ImproperlyConfigured(f"{name} is not set")
    return encoded
