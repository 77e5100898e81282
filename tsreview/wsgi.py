import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tsreview.settings")
application = get_wsgi_application()


def _views_load() -> int:
    """Import the URLconf, and with it every view, serializer and form, now: as each web worker
    boots, before it accepts a connection. Left to the first request, a freshly (re)started
    worker spent about a second importing (0.3–0.4 s on an idle machine, ~1 s under load) while
    a scanner's push or a reviewer's page waited for it."""
    from django.urls import get_resolver

    return len(get_resolver().url_patterns)


_views_load()
