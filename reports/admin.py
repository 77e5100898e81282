"""Admins manage scanners and the wellness limits here; the log and decisions are read-only."""

from django.contrib import admin

from .models import AuditEvent, Scanner, WellnessPolicy


@admin.register(Scanner)
class ScannerAdmin(admin.ModelAdmin):
    list_display = ["name", "token_prefix", "is_active", "created_at"]
    readonly_fields = ["token_hash", "token_prefix", "created_at"]
    fields = ["name", "is_active", "callback_url", "token_prefix", "token_hash", "created_at"]

    def has_add_permission(self, request):
        return False  # tokens are made by `manage.py create_scanner`, which shows them once


@admin.register(WellnessPolicy)
class WellnessPolicyAdmin(admin.ModelAdmin):
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
