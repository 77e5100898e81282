"""Forms of the lead's report pages."""

from django import forms

from .models import Report


class ReportForm(forms.ModelForm):
    class Meta:
        model = Report
        fields = ["incident_type", "incident_at", "incident_at_description", "platform", "additional_info"]
        labels = {"incident_at": "Incident date and time (with time zone)",
                  "incident_at_description": "How the incident time was determined"}
        widgets = {
            "incident_at": forms.TextInput(attrs={"placeholder": "2026-09-14T03:12:00+00:00"}),
            "incident_at_description": forms.Textarea(attrs={"rows": 2, "maxlength": 3000}),
            "additional_info": forms.Textarea(attrs={"rows": 4, "maxlength": 3000}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["incident_at"].required = True
        self.fields["incident_at_description"].required = True


class AttestForm(forms.Form):
    field = forms.CharField(max_length=200)
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class MoveForm(forms.Form):
    target = forms.CharField(max_length=20, help_text="A draft's number, or 'new'.")


class HoldExtendForm(forms.Form):
    until = forms.DateTimeField(help_text="The new end of the hold.")
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class DestroyForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="The law-enforcement request: agency and reference.")
