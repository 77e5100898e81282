"""Admins manage scanners and the wellness limits here; the log and decisions are read-only."""

from django.contrib import admin
from django.db import transaction
from django.forms.models import model_to_dict

from .audit import audit_record
from .models import AuditEvent, Scanner, WellnessPolicy


class AuditedAdmin(admin.ModelAdmin):
    """Changes made in the admin are audit events like any other change."""

    def save_model(self, request, obj, form, change):
        old = model_to_dict(type(obj).objects.get(pk=obj.pk)) if change else {}
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            new = model_to_dict(obj)
            audit_record(actor=request.user, action=f"{type(obj).__name__.lower()}.changed", subject=obj,
                         data={"old": {k: old.get(k) for k in form.changed_data}, "new": {k: new.get(k) for k in form.changed_data}})


@admin.register(Scanner)
class ScannerAdmin(AuditedAdmin):
    list_display = ["name", "token_prefix", "is_active", "created_at"]
    readonly_fields = ["token_hash", "token_prefix", "created_at"]
    fields = ["name", "is_active", "callback_url", "token_prefix", "token_hash", "created_at"]

    def has_add_permission(self, request):
        return False  # tokens are made by `manage.py create_scanner`, which shows them once


@admin.register(WellnessPolicy)
class WellnessPolicyAdmin(AuditedAdmin):
    list_display = ["daily_cap_seconds", "daily_cap_items", "break_after_minutes", "min_blur", "max_reveal_seconds"]

    def has_add_permission(self, request):
        return not WellnessPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["id", "at", "actor_name", "action", "subject_kind", "subject_id", "item_id"]
    list_filter = ["action", "actor_kind"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
