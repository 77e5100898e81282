"""Errors shared by every stage and entry point."""

from django.db import InterfaceError, OperationalError


class Refused(Exception):
    """A domain operation refused what was asked, naming each field and why.

    Stages raise it; entry points show the messages (a form's errors, a page's messages,
    an API's {"errors": ...})."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


# The database cannot be reached: a clean 503 (other database errors are bugs and stay 500s).
DATABASE_DOWN = (OperationalError, InterfaceError)
UNAVAILABLE_TEXT = "The database is unavailable; nothing was stored. Retry later."
# The body of that 503, for the API and for any /api/ path Django's handler answers.
UNAVAILABLE = {"errors": {"service": [UNAVAILABLE_TEXT]}}


class StoreUnavailable(OSError):
    """The media store (an S3 bucket) did not answer: a clean 503 in the API; an OSError, so the
    tasks that retry on OSError retry on it too."""


STORE_UNAVAILABLE = {"errors": {"service": ["The media store is unavailable; nothing was stored. Retry later."]}}
