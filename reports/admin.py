"""Admins manage scanners and the wellness limits here; the log and decisions are read-only."""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import models, transaction
from django.forms.models import model_to_dict
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from .audit import audit_record
from .intake.provenance import SOURCE_TYPES
from .jobs import enqueue
from .models import AuditEvent, FeedbackPolicy, PriorityPolicy, ReviewQueue, Scanner, WellnessPolicy

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
        before = {f: sorted(str(x) for x in getattr(form.instance, f).all()) for f in ("groups", "members")
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

    def delete_queryset(self, request, queryset):
        """The changelist's "delete selected": one event per deleted row, in the same transaction."""
        with transaction.atomic():
            for obj in queryset:
                audit_record(actor=request.user, action=f"{type(obj).__name__.lower()}.deleted", subject=obj,
                             data={"name": str(obj), "bulk": True})
            super().delete_queryset(request, queryset)


class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    """People: also the admin's password form (set, change or disable a password)."""

    def user_change_password(self, request, id, form_url=""):
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:  # the form was valid and saved
                user = self.model.objects.get(pk=id)
                audit_record(actor=request.user, action="user.password_changed", subject=user,
                             data={"password": "(changed)", "usable": user.has_usable_password()})
        return response


@admin.register(Scanner)
class ScannerAdmin(AuditedAdmin):
    list_display = ["name", "token_prefix", "is_active", "created_at"]
    readonly_fields = ["token_hash", "token_prefix", "created_at"]
    fields = ["name", "is_active", "callback_url", "token_prefix", "token_hash", "created_at"]
    # A callback address typed without a scheme is https (Django 6's default; 5.2 assumed http).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request):
        return False  # tokens are made by `manage.py create_scanner`, which shows them once


@admin.register(WellnessPolicy)
class WellnessPolicyAdmin(AuditedAdmin):
    list_display = ["daily_cap_seconds", "daily_cap_items", "break_after_minutes", "min_blur", "max_reveal_seconds"]

    def has_add_permission(self, request):
        return not WellnessPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


class PriorityPolicyForm(forms.ModelForm):
    """Points are whole numbers; source points name known source types only (docs/priority.md)."""

    class Meta:
        model = PriorityPolicy
        fields = "__all__"

    def _points(self, name, allowed=None):
        value = self.cleaned_data.get(name)
        if not isinstance(value, dict):
            raise forms.ValidationError('Give an object of names and points, e.g. {"A1": 400}.')
        for key, points in value.items():
            if isinstance(points, bool) or not isinstance(points, int) or not -5000 <= points <= 5000:
                raise forms.ValidationError(f"{key}: points must be a whole number between -5000 and 5000.")
            if allowed is not None and key not in allowed:
                raise forms.ValidationError(f"{key}: not a source type ({', '.join(sorted(allowed))}).")
        return value

    def clean_label_points(self):
        return self._points("label_points")

    def clean_list_points(self):
        return self._points("list_points")

    def clean_source_points(self):
        return self._points("source_points", {*SOURCE_TYPES, "ai_training_data", "model_output", "user_upload_with_uploader"})


def _recompute_after_commit():
    # Waiting items are scored again in a worker (the policy or the queues changed).
    transaction.on_commit(lambda: enqueue("priorities_recompute_task"))


@admin.register(PriorityPolicy)
class PriorityPolicyAdmin(AuditedAdmin):
    form = PriorityPolicyForm
    list_display = ["label_points", "source_points", "distance_points", "seconds_per_point"]

    def has_add_permission(self, request):
        return not PriorityPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        _recompute_after_commit()


@admin.register(ReviewQueue)
class ReviewQueueAdmin(AuditedAdmin):
    list_display = ["name", "position", "media", "source_types", "labels", "lists"]
    filter_horizontal = ["members"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        _recompute_after_commit()


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
for model, audited in ((get_user_model(), AuditedUserAdmin),
                       (Group, type("AuditedGroupAdmin", (AuditedAdmin, GroupAdmin), {})),
                       (TOTPDevice, type("AuditedTOTPDeviceAdmin", (AuditedAdmin, TOTPDeviceAdmin), {}))):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, audited)


@admin.register(FeedbackPolicy)
class FeedbackPolicyAdmin(AuditedAdmin):
    list_display = ["target_precision", "entry_min_decisions", "quarantine_after"]

    def has_add_permission(self, request):
        return not FeedbackPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
