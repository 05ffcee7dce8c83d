"""Django settings of bench/server.py's server: Chirp's own (``web.settings``),
with one more page, a trivial view (``bench/server_urls.py``), beside them.

The locust users log in as they start, all from 127.0.0.1: password hashing
is fast and the log-in limits are held high, so that neither the log-ins nor
429 pages weigh on what is measured (reading pages, posting, following).
Chirp's production URLs and settings are unchanged.
"""

from web.settings import *  # noqa: F403

ROOT_URLCONF = "bench.server_urls"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CHIRP_LOGIN_LIMIT_PER_IP = 1_000_000
CHIRP_LOGIN_LIMIT_PER_USERNAME = 1_000_000
CHIRP_SIGNUP_LIMIT_PER_IP = 1_000_000
