"""HTML entry points: parse input, access helper, one operation, render."""

from django.db.models import Count
from django.shortcuts import render

from .access import is_lead, user_roles
from .models import Item


def nav_context(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"roles": user_roles(user), "is_lead": is_lead(user)}


def home(request):
    counts = dict(Item.objects.values_list("state").annotate(n=Count("id")))
    return render(request, "reports/home.html", {"counts": counts})
