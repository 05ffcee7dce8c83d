"""Django settings for the tests: ``web.settings`` on a scratch data directory.

pytest-django imports the settings before any conftest runs, so the data
directory must be chosen here, before ``web.settings`` reads it.
"""

import os
import tempfile

os.environ.setdefault("CHIRP_DATA_DIR", tempfile.mkdtemp(prefix="chirp-tests-"))

from web.settings import *  # noqa: F403

# Fast hashing: the tests check flows, not password storage strength.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The log-in and sign-up limits (web.limits) held high: the tests log in and
# sign up often. tests/web/test_limits.py lowers them where it tests them.
CHIRP_LOGIN_LIMIT_PER_IP = 1000
CHIRP_LOGIN_LIMIT_PER_USERNAME = 1000
CHIRP_SIGNUP_LIMIT_PER_IP = 1000
