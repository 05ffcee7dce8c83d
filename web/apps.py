"""Django app configuration for Chirp's web front end."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "web"
    verbose_name = "Chirp"
    default_auto_field = "django.db.models.BigAutoField"
