"""Who may see what. Views fetch items only through these helpers."""

from .models import Role


def user_roles(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    roles = set(user.groups.values_list("name", flat=True)) & set(Role.values)
    if user.is_superuser:
        roles.add(Role.ADMIN)
    return roles


def is_lead(user) -> bool:
    """Leads and admins may audit, decide escalations and see every item."""
    return bool(user_roles(user) & {Role.LEAD, Role.ADMIN})
