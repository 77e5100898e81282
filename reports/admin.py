"""Admins manage scanners and the wellness limits here; the log and decisions are read-only."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.forms.models import model_to_dict
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from .audit import audit_record
from .models import AuditEvent, FeedbackPolicy, Scanner, WellnessPolicy

SECRET_FIELDS = {"password", "key", "token_hash"}


def _visible(values: dict) -> dict:
    return {k: ("(changed)" if k in SECRET_FIELDS else v) for k, v in values.items()}


class AuditedAdmin(admin.ModelAdmin):
    """Changes made in the admin are audit events like any other change (secrets not copied)."""

    def save_model(self, request, obj, form, change):
        old = model_to_dict(type(obj).objects.get(pk=obj.pk)) if change else {}
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            new = model_to_dict(obj)
            fields = [f for f in form.changed_data if f not in ("groups", "user_permissions")]
            audit_record(actor=request.user, action=f"{type(obj).__name__.lower()}.{'changed' if change else 'added'}",
                         subject=obj, data={"old": _visible({k: old.get(k) for k in fields}),
                                            "new": _visible({k: new.get(k) for k in fields})})

    def save_related(self, request, form, formsets, change):
        before = {f: sorted(str(x) for x in getattr(form.instance, f).all()) for f in ("groups",)
                  if change and hasattr(form.instance, f)}
        super().save_related(request, form, formsets, change)
        for name, old in before.items():
            new = sorted(str(x) for x in getattr(form.instance, name).all())
            if new != old:  # roles: who may see what
                with transaction.atomic():
                    audit_record(actor=request.user, action=f"{type(form.instance).__name__.lower()}.{name}_changed",
                                 subject=form.instance, data={"old": old, "new": new})

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit_record(actor=request.user, action=f"{type(obj).__name__.lower()}.deleted", subject=obj,
                         data={"name": str(obj)})
            super().delete_model(request, obj)


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


# People, roles and second factors: the admin's most sensitive changes, audited like the rest.
for model, base in ((get_user_model(), UserAdmin), (Group, GroupAdmin), (TOTPDevice, TOTPDeviceAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, type(f"Audited{base.__name__}", (AuditedAdmin, base), {}))


@admin.register(FeedbackPolicy)
class FeedbackPolicyAdmin(AuditedAdmin):
    list_display = ["target_precision", "entry_min_decisions", "quarantine_after"]

    def has_add_permission(self, request):
        return not FeedbackPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
