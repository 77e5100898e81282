"""What every page's top bar shows. Reads only: a context processor never writes."""

from ..access import is_lead, user_roles
from ..review import wellness


def nav_context(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    policy = wellness.policy_peek()
    day = wellness.exposure_peek(user)
    share = wellness.cap_share(day, policy)
    return {"roles": user_roles(user), "is_lead": is_lead(user), "exposure": day, "policy": policy,
            "cap_percent": round(100 * share), "cap_decile": 10 * round(10 * share)}
