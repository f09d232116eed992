"""Issue 11's attacks, each against a real `tokenomy serve` on loopback, with the figure
the issue names: admitted vs limit, charged vs limit, rows lost, /healthz latency
under the 8 MB attack, connections held by slow clients, time and memory to
compress 1 MB, whether credentials reached a capture server, ...

The proxy runs from the `tokenomy` on PYTHONPATH, so the same script measures any
version; the attacker's tools (the loopback upstream and its faults, the TCP
relay) always come from this checkout. Settings a version does not know are left
out of its config (it then runs with whatever it had instead):

    PYTHONPATH=/path/to/old/src python benchmarks/hardening.py   # before
    PYTHONPATH=src python benchmarks/hardening.py                # after

Each attack takes seconds; the slowest wait on the old code's compression: a
request abandoned at 2 s is watched for 45 s (does it still call upstream?),
and a 1 MB message gets up to 180 s.
PostgreSQL attacks (items 2, 4, 6, 7) need 127.0.0.1:5432 (trust, db `test`);
they use a fresh schema and drop it.

Options: --only credentials,auth8mb,...  --skip-postgres
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

from hardening_kit import proxy_src
from hardening_ledger import LEDGER_ATTACKS
from hardening_server import SERVER_ATTACKS

ORDER = ["credentials", "poison", "fanout", "heartbeat", "auth8mb", "blips", "overbudget",
         "slowclients", "unread", "abandoned", "compress1mb", "streamusage", "killedstream"]
POSTGRES = {"poison", "heartbeat", "blips"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated attack names: "
                        + ", ".join(ORDER))
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    attacks = {**SERVER_ATTACKS, **LEDGER_ATTACKS}
    names = [n for n in (args.only.split(",") if args.only else ORDER) if n]
    unknown = set(names) - set(attacks)
    if unknown:
        parser.error(f"unknown attacks: {', '.join(sorted(unknown))}")
    if args.skip_postgres:
        names = [n for n in names if n not in POSTGRES]
    print(f"# tokenomy hardening attacks: proxy code from {proxy_src() or '(installed)'}; "
          f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{'item':<5} {'attack':<74} figure")
    failed = 0
    for name in names:
        folder = Path(tempfile.mkdtemp(prefix=f"hardening-{name}-"))
        began = time.monotonic()
        try:
            found = attacks[name](folder)
        except Exception as exc:  # one attack's trouble is reported, the rest still run
            failed += 1
            traceback.print_exc(file=sys.stderr)
            found = [("?", name, f"attack failed: {type(exc).__name__}: {exc}"[:200])]
        for item, attack, figure in found:
            print(f"{item:<5} {attack:<74} {figure}", flush=True)
        print(f"      ({name}: {time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
