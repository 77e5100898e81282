"""GET /metrics: the Prometheus exposition (docs/operations.md), only with the metrics token
(`Authorization: Bearer …`, TSREVIEW_METRICS_TOKEN) or from a configured address
(TSREVIEW_METRICS_ALLOWED_IPS, addresses or networks). Anyone else, and everyone when neither is
configured, gets 404, as for any page they may not see."""

import hmac
import ipaddress

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from ..leads.metrics import TsreviewCollector

REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(TsreviewCollector())


def _allowed(request) -> bool:
    token = settings.TSREVIEW_METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    # The direct peer only: a forwarded address could be anything the client wrote.
    return any(address in ipaddress.ip_network(net, strict=False) for net in settings.TSREVIEW_METRICS_ALLOWED_IPS)


@login_not_required
@require_GET
def metrics(request):
    if not _allowed(request):
        raise Http404
    response = HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
