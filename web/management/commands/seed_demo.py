"""``manage.py seed_demo``: seed the demo network, and print the demo log-in."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from application.replay import count_events
from web.demo import DEMO_LOGIN, DEMO_PASSWORD, seed_demo
from web.runtime import get_chirp


class Command(BaseCommand):
    help = "Seed a small demo network (about a dozen people and a hundred posts)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when the event log has events"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        chirp = get_chirp()
        if options["if_empty"] and count_events(chirp.commands) > 0:
            self.stdout.write("Chirp already has data; not seeding the demo.")
        else:
            people = seed_demo(chirp)
            self.stdout.write(self.style.SUCCESS(f"Seeded the demo network: {people} people."))
        self.stdout.write(f"Demo log-in: username {DEMO_LOGIN!r}, password {DEMO_PASSWORD!r}")
