"""Every write an admin can make in the Django admin is an audit event (issue 13, finding 4):
for each registered model, each of add, change, delete, "delete selected" (and any other
action the admin offers), and the admin's password form. A model registered without a case
here fails the suite."""

import json

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from reports.audit import audit_record
from reports.models import AuditEvent, FeedbackPolicy, PriorityPolicy, ReviewQueue, Scanner, WellnessPolicy

from .factories import make_scanner, password_hash

pytestmark = pytest.mark.django_db
PASSWORD = "a long new passphrase 42"


def make_user(n):
    # The suite's one hash (factories.password_hash): hashing a password costs half a second here.
    return get_user_model().objects.create(username=f"person{n}", email=f"person{n}@example.org", password=password_hash())


# Per registered model: how to make a row, the fields an add sends, and a field a change alters.
CASES = {
    "scanner": {"make": lambda n: Scanner.objects.get(name=f"scanner-{n}") if make_scanner(f"scanner-{n}") else None,
                "add": None, "change": ("is_active", False)},
    "wellnesspolicy": {"make": lambda n: WellnessPolicy.objects.create(), "add": {}, "change": ("daily_cap_items", 123)},
    "auditevent": {"make": None, "add": None, "change": None},
    "feedbackpolicy": {"make": lambda n: FeedbackPolicy.objects.create(), "add": {},
                       "change": ("quarantine_after", 5)},
    "prioritypolicy": {"make": lambda n: PriorityPolicy.objects.create(), "add": {},
                       "change": ("seconds_per_point", 90)},
    "reviewqueue": {"make": lambda n: ReviewQueue.objects.create(name=f"queue-{n}", position=n),
                    "add": {"name": "live uploads", "position": 1, "media": "any"}, "change": ("name", "renamed")},
    "user": {"make": make_user,
             "add": {"username": "newcomer", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
             "change": ("first_name", "Changed")},
    "group": {"make": lambda n: Group.objects.create(name=f"group-{n}"), "add": {"name": "auditors"},
              "change": ("name", "renamed")},
    "totpdevice": {"make": lambda n: TOTPDevice.objects.create(user=make_user(100 + n), name=f"phone-{n}"),
                   "add": lambda: {"user": make_user(99).pk, "name": "new phone", "key": "ab" * 20, "step": 30, "t0": 0,
                                   "digits": 6, "tolerance": 1, "drift": 0, "confirmed": "on"},
                   "change": ("name", "renamed")},
}


@pytest.fixture
def ada(db):
    person = get_user_model().objects.create(username="ada", email="ada@example.org", is_staff=True, is_superuser=True,
                                             password=password_hash())
    client = Client()
    client.force_login(person)
    return client


def registered() -> dict:
    return {model._meta.model_name: (model, model_admin) for model, model_admin in admin.site._registry.items()}


def url(model, what, pk=None) -> str:
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    return {"add": f"{base}add/", "list": base, "change": f"{base}{pk}/change/", "delete": f"{base}{pk}/delete/",
            "password": f"{base}{pk}/password/"}[what]


def form_data(form, **changes) -> dict:
    """What a browser would post back for the admin's form as shown, with `changes`."""
    data = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form.initial.get(name, field.initial)
        value = value() if callable(value) else value
        if isinstance(field, forms.SplitDateTimeField):
            data[f"{name}_0"] = value.date().isoformat() if value else ""
            data[f"{name}_1"] = value.time().isoformat(timespec="seconds") if value else ""
        elif isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif isinstance(field, forms.ModelMultipleChoiceField):
            data[name] = [getattr(v, "pk", v) for v in value or []]
        elif value is None:
            data[name] = ""
        elif isinstance(field, forms.JSONField):
            data[name] = value if isinstance(value, str) else json.dumps(value)
        else:
            data[name] = getattr(value, "pk", value)
    for name, value in changes.items():
        if isinstance(value, bool):
            data.pop(name, None) if not value else data.__setitem__(name, "on")
        else:
            data[name] = value
    return data


def new_events(since: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(id__gt=since).order_by("id"))


def last_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_every_registered_model_has_a_case():
    assert set(registered()) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_admin_write_on_each_model_is_audited(ada, name):
    model, model_admin = registered()[name]
    case = CASES[name]
    kind = model.__name__.lower()

    # Add (where the admin allows it).
    if case["add"] is None or (name == "wellnesspolicy" and WellnessPolicy.objects.exists()):
        assert ada.get(url(model, "add")).status_code == 403
    else:
        fields = case["add"]() if callable(case["add"]) else case["add"]
        page = ada.get(url(model, "add"))
        before, count = last_id(), model.objects.count()
        response = ada.post(url(model, "add"), form_data(page.context["adminform"].form, **fields))
        assert response.status_code == 302, page.context and response.context and response.context["adminform"].form.errors
        assert model.objects.count() == count + 1
        assert f"{kind}.added" in [e.action for e in new_events(before)]

    if case["make"] is None:  # the audit log itself: read-only in the admin
        with transaction.atomic():
            event = audit_record(actor=None, action="test.event")
        assert ada.post(url(model, "change", event.pk), {"action": "y"}).status_code == 403
        assert ada.post(url(model, "delete", event.pk), {"post": "yes"}).status_code == 403
        assert not {a for a in model_admin.get_actions(request_for(ada))}
        return

    # Change.
    obj = case["make"](1)
    field, value = case["change"]
    page = ada.get(url(model, "change", obj.pk))
    before = last_id()
    response = ada.post(url(model, "change", obj.pk), form_data(page.context["adminform"].form, **{field: value}))
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    obj.refresh_from_db()
    assert getattr(obj, field) == value
    [changed] = [e for e in new_events(before) if e.action == f"{kind}.changed"]
    assert changed.actor_name == "ada" and field in changed.data["new"]

    actions = set(model_admin.get_actions(request_for(ada)))
    assert actions <= {"delete_selected"}, f"an admin action without a case here: {actions}"
    if not model_admin.has_delete_permission(request_for(ada)):
        assert ada.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
        assert not actions
        return

    # Delete one.
    before = last_id()
    assert ada.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 302
    assert not model.objects.filter(pk=obj.pk).exists()
    assert [e.subject_id for e in new_events(before) if e.action == f"{kind}.deleted"] == [str(obj.pk)]

    # Delete selected (the changelist's bulk action).
    assert actions == {"delete_selected"}
    selected = [case["make"](n) for n in (2, 3)]
    before = last_id()
    response = ada.post(url(model, "list"), {"action": "delete_selected", "_selected_action": [o.pk for o in selected],
                                             "post": "yes"})
    assert response.status_code == 302
    assert not model.objects.filter(pk__in=[o.pk for o in selected]).exists()
    deleted = [e for e in new_events(before) if e.action == f"{kind}.deleted"]
    assert sorted(e.subject_id for e in deleted) == sorted(str(o.pk) for o in selected)
    assert all(e.data["bulk"] is True and e.actor_name == "ada" for e in deleted)


def request_for(client):
    """A request as the signed-in admin, for asking a ModelAdmin what it offers."""
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(username="ada")
    return request


def test_a_scanners_callback_address_typed_without_a_scheme_is_https(ada):
    make_scanner("scanner-cb")
    scanner = Scanner.objects.get(name="scanner-cb")
    page = ada.get(url(Scanner, "change", scanner.pk))
    before = last_id()
    response = ada.post(url(Scanner, "change", scanner.pk),
                        form_data(page.context["adminform"].form, callback_url="scanner.example.org/hook"))
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    scanner.refresh_from_db()
    assert scanner.callback_url == "https://scanner.example.org/hook"
    [changed] = [e for e in new_events(before) if e.action == "scanner.changed"]
    assert "callback_url" in changed.data["new"]


def test_the_admins_password_form_is_audited_without_the_password(ada):
    person = make_user(7)
    before = last_id()
    response = ada.post(url(get_user_model(), "password", person.pk),
                        {"password1": "another passphrase 77", "password2": "another passphrase 77",
                         "usable_password": "true"})
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.check_password("another passphrase 77")
    [event] = [e for e in new_events(before) if e.action == "user.password_changed"]
    assert event.subject_id == str(person.pk) and event.actor_name == "ada"
    assert event.data == {"password": "(changed)", "usable": True}
    assert "another passphrase" not in str(event.data) and person.password not in str(event.data)

    before = last_id()  # disabling password sign-in is a password change too
    response = ada.post(url(get_user_model(), "password", person.pk), {"usable_password": "false", "unset-password": "Disable password-based authentication"})
    assert response.status_code == 302
    person.refresh_from_db()
    assert not person.has_usable_password()
    [event] = [e for e in new_events(before) if e.action == "user.password_changed"]
    assert event.data["usable"] is False

    before = last_id()  # a form with errors changes nothing and records nothing
    response = ada.post(url(get_user_model(), "password", person.pk),
                        {"password1": "x", "password2": "y", "usable_password": "true"})
    assert response.status_code == 200 and not new_events(before)
