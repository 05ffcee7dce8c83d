"""Log-ins for seeded people, for bench/server.py: ``server_accounts.py PASSWORD NAME...``.

``manage.py seed_network`` stores people in the event log only; this gives
each named one a Django account with ``PASSWORD``. Run with bench/server.py's
environment: its Django settings (fast password hashing) and data directory.
"""

from __future__ import annotations

import sys

import django


def main(argv: list[str]) -> int:
    django.setup()
    from django.contrib.auth import get_user_model

    accounts = get_user_model()
    password, *names = argv
    for name in names:
        account, _ = accounts.objects.get_or_create(username=name)
        account.set_password(password)
        account.save()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
