"""Who may see what. Views fetch items only through these helpers."""

from .models import Role


def user_roles(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    if not hasattr(user, "_tsreview_roles"):  # once per request: the user object lives that long
        roles = set(user.groups.values_list("name", flat=True)) & set(Role.values)
        if user.is_superuser:
            roles.add(Role.ADMIN)
        user._tsreview_roles = roles
    return user._tsreview_roles


def is_lead(user) -> bool:
    """Leads and admins may audit, decide escalations and see every item."""
    return bool(user_roles(user) & {Role.LEAD, Role.ADMIN})


def lead_required(view):
    """Lead pages: anyone else gets 404, as for any page they may not see."""
    from functools import wraps

    from django.http import Http404

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not is_lead(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped
