"""``manage.py seed_network N``: a large synthetic network for benchmarks."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from application.synthetic import synthetic_network
from application.workload import WorkloadError, load_workload
from web.runtime import get_chirp


class Command(BaseCommand):
    help = "Seed N users with a heavy-tailed follower distribution, and their posts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("users", type=int)
        parser.add_argument("--posts-per-user", type=int, default=5)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["users"] < 2 or options["posts_per_user"] < 0:
            raise CommandError("give at least 2 users and a non-negative --posts-per-user")
        chirp = get_chirp()
        ops = synthetic_network(options["users"], options["posts_per_user"], options["seed"])
        with tqdm(unit="op", desc="seeding") as bar:
            try:
                counts = load_workload(chirp.commands, (json.dumps(op) for op in ops), bar.update)
            except WorkloadError as error:
                raise CommandError(str(error)) from None
        chirp.sync()
        self.stdout.write(json.dumps(counts, sort_keys=True))
