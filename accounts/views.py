"""Signing in: password, then a TOTP code; throttled by an atomic counter taken before the
password check (accounts/throttle.py); every checked attempt audited, refused ones once per burst."""

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm, UsernameField
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.plugins.otp_totp.models import TOTPDevice

from reports.audit import audit_record

from . import throttle


def _client_ip(request) -> str:
    """The client's address: behind the trusted proxies (TSREVIEW_TRUSTED_PROXIES), the last
    address in X-Forwarded-For that is not one of them."""
    address = request.META.get("REMOTE_ADDR", "")
    trusted = set(settings.TSREVIEW_TRUSTED_PROXIES)
    if address in trusted:
        for hop in reversed([h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]):
            if hop not in trusted:
                return hop[:64]
    return address


def _username(raw: str) -> str:
    """The name as sign-in reads it (stripped, NFKC): "ｒｉｔａ " counts as "rita"."""
    return (UsernameField().to_python(raw) or "")[:150]


# One answer for every failed sign-in: a wrong password, and a right one without its code or
# with a wrong code, read the same (the message does not confirm the password).
FAILED = "That did not work. Check your username and password and, if you have set up an authenticator, its code."


class LoginForm(AuthenticationForm):
    error_messages = {**AuthenticationForm.error_messages, "invalid_login": FAILED}
    token = forms.CharField(required=False, max_length=8, label="Authenticator code",
                            widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}))

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        self.otp_device = None
        if user is not None and TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            token = (cleaned.get("token") or "").strip()
            if not token:
                raise forms.ValidationError(FAILED, code="token_required")
            self.otp_device = match_token(user, token)
            if self.otp_device is None:
                raise forms.ValidationError(FAILED, code="invalid_token")
        return cleaned


class LoginView(auth_views.LoginView):
    """Django's login with a second factor, throttling, and every attempt in the audit log."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        username, ip = _username(request.POST.get("username", "")), _client_ip(request)
        self.slot = throttle.attempt_take(username=username, ip=ip)  # before the password is checked
        if self.slot is None:
            if throttle.throttled_burst_starts(username=username, ip=ip):  # one event per burst
                with transaction.atomic():
                    audit_record(actor=None, action="user.login_throttled",
                                 data={"username": username, "ip": ip, "window_minutes": settings.TSREVIEW_LOGIN_LOCKOUT_MINUTES,
                                       "note": "further refused attempts in this window are not recorded one by one"})
            message = f"Too many failed sign-ins. Try again in {throttle.minutes_left()} minutes."
            context = self.get_context_data(form=self.form_class(request=request), throttled=message)
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "two_factor_required": settings.TSREVIEW_REQUIRE_2FA}

    def form_valid(self, form):
        self.slot.release()  # a successful sign-in is not a failure
        response = super().form_valid(form)
        if form.otp_device is not None:
            otp_login(self.request, form.otp_device)
        with transaction.atomic():
            audit_record(actor=self.request.user, action="user.login",
                         data={"ip": _client_ip(self.request), "second_factor": form.otp_device is not None})
        return response

    def form_invalid(self, form):
        with transaction.atomic():
            audit_record(actor=None, action="user.login_failed",
                         data={"username": _username(form.data.get("username", "")), "ip": _client_ip(self.request),
                               "reason": "code" if form.get_user() else "password"})
        return super().form_invalid(form)


@login_not_required
def admin_login(request):
    """The admin's sign-in link. People sign in in one place (with their second factor); a
    person already signed in without the admin role gets a plain 403, not a redirect that the
    sign-in page would send straight back here."""
    if request.user.is_authenticated and request.user.is_active and request.user.is_staff:
        return redirect("admin:index")
    if request.user.is_authenticated:
        return render(request, "registration/not_admin.html", status=403)
    target = reverse("login")
    return redirect(f"{target}?{request.META['QUERY_STRING']}" if request.META.get("QUERY_STRING") else target)


@require_POST
def logout(request):
    with transaction.atomic():
        audit_record(actor=request.user, action="user.logout")
    return auth_views.LogoutView.as_view()(request)


def device_for_enrolment(user) -> TOTPDevice:
    """The person's unconfirmed authenticator, made on first visit."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


def device_confirm(*, request, device: TOTPDevice, token: str) -> bool:
    """The first correct code confirms the device and verifies this session. Audited."""
    if not device.verify_token(token.strip()):
        return False
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit_record(actor=request.user, action="user.2fa_enrolled", subject=device)
    otp_login(request, device)
    return True


def _qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


def two_factor(request):
    """Enrolment: scan the QR code (or type the key), then prove it with one code."""
    if TOTPDevice.objects.filter(user=request.user, confirmed=True).exists():
        if not request.user.is_verified():  # enrolled elsewhere since this session signed in
            auth_logout(request)
            return redirect("login")
        return render(request, "registration/two_factor.html", {"enrolled": True})
    device = device_for_enrolment(request.user)
    error = ""
    if request.method == "POST":
        if device_confirm(request=request, device=device, token=request.POST.get("token", "")):
            return redirect("home")
        error = "That code is not right. Check the time on your phone and try the newest code."
    from base64 import b32encode

    return render(request, "registration/two_factor.html", {
        "qr_svg": _qr_svg(device.config_url), "secret": b32encode(device.bin_key).decode(), "error": error,
    }, status=400 if error else 200)
