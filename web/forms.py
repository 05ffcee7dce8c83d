"""Forms: field-level input checks; the domain's own errors are added by the views."""

from __future__ import annotations

from collections.abc import Callable
from uuid import uuid4

from django import forms
from django.contrib.auth import password_validation

from domain.errors import DomainError
from domain.user import (
    MAX_BIO_LENGTH,
    MAX_DISPLAY_NAME_LENGTH,
    check_bio,
    check_display_name,
    check_username,
)


def _domain_checked(check: Callable[[str], None], value: str) -> str:
    """``value`` when the domain's ``check`` accepts it; its message as the
    field's error otherwise, so the form shows it beside the field."""
    try:
        check(value)
    except DomainError as error:
        raise forms.ValidationError(str(error)) from None
    return value


class SignUpForm(forms.Form):
    username = forms.CharField(
        max_length=15, help_text="1 to 15 letters, digits or _. This is your @name."
    )
    display_name = forms.CharField(max_length=MAX_DISPLAY_NAME_LENGTH, required=False)
    password = forms.CharField(widget=forms.PasswordInput, strip=False)
    password_again = forms.CharField(widget=forms.PasswordInput, strip=False)

    def clean_username(self) -> str:
        return _domain_checked(check_username, self.cleaned_data["username"])

    def clean_display_name(self) -> str:
        return _domain_checked(check_display_name, self.cleaned_data["display_name"])

    def clean(self) -> dict[str, object] | None:
        cleaned = super().clean()
        password = self.cleaned_data.get("password")
        if password and password != self.cleaned_data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        elif password:
            try:
                password_validation.validate_password(password)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


# The weighted length is the domain's rule; this only bounds the raw size.
MAX_POST_RAW_LENGTH = 2000


class PostForm(forms.Form):
    text = forms.CharField(
        max_length=MAX_POST_RAW_LENGTH, strip=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    # A fresh UUID in each rendered form: the post's idempotency key, so the
    # same form sent twice stores one post. Optional for clients without it.
    token = forms.UUIDField(
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": "This form was damaged on the way; press Post again."},
    )

    @classmethod
    def fresh(cls, text: str = "") -> PostForm:
        """A compose form with a new token, holding ``text`` (a refused draft)."""
        return cls(initial={"text": text, "token": uuid4()})

    def error_messages(self) -> list[str]:
        """Every error of this bound form, in field order, for people."""
        return [str(message) for messages in self.errors.values() for message in messages]


class ProfileForm(forms.Form):
    display_name = forms.CharField(max_length=MAX_DISPLAY_NAME_LENGTH, required=False)
    bio = forms.CharField(
        max_length=MAX_BIO_LENGTH, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def clean_display_name(self) -> str:
        return _domain_checked(check_display_name, self.cleaned_data["display_name"])

    def clean_bio(self) -> str:
        return _domain_checked(check_bio, self.cleaned_data["bio"])
