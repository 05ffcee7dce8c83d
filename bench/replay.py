"""Benchmark: rebuild every feed from the event log (replay), in events per second.

Generates the shared workload (``../shared/workload/generate.py``), loads it
into a SQLite event store in a scratch data directory through Chirp's commands,
then runs ``chirp replay`` on it, which shows a progress bar and prints
events/s. Run on demand, not in the test suite:

    .venv/bin/python bench/replay.py --users 1000

With ``--users 1000 --seed 1`` the workload holds 123,630 ops, each one event.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT.parent / "shared" / "workload" / "generate.py"


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--users", type=int, default=1000)
    args.add_argument("--seed", type=int, default=1)
    args.add_argument("--keep", type=Path, help="use and keep this data directory")
    options = args.parse_args()
    if not GENERATOR.is_file():
        print(f"bench: no workload generator at {GENERATOR}", file=sys.stderr)
        return 2
    chirp = str(Path(sys.executable).with_name("chirp"))
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = options.keep or Path(scratch) / "data"
        workload = Path(scratch) / "workload.jsonl"
        env = {**os.environ, "CHIRP_DATA_DIR": str(data_dir)}
        env.pop("DATABASE_URL", None)
        subprocess.run(
            [sys.executable, str(GENERATOR), "--users", str(options.users),
             "--seed", str(options.seed), "-o", str(workload)],
            check=True,
        )  # fmt: skip
        if not (data_dir / "events.sqlite").exists():
            subprocess.run([chirp, "load-workload", str(workload)], env=env, check=True)
        subprocess.run([chirp, "replay"], env=env, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
