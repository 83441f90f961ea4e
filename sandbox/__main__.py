"""`python -m kore_sessions.sandbox`: serve the sandbox API on its own, to try `kore-sessions` by hand.

It generates a few bots' sessions up to a day ahead, serves them on loopback with a clock
that follows the wall clock (so sessions keep starting and open ones close while it runs),
and prints the configuration that points `kore-sessions` at it. The app's credentials are
the sandbox's own, fixed and printed: they open nothing but this local server.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from kore_sessions.sandbox.auth import SandboxApp
from kore_sessions.sandbox.generator import generate_sessions, make_bot_ids
from kore_sessions.sandbox.server import SandboxServer

# The sandbox app's credentials: fixed, so a configuration written once keeps working.
SANDBOX_CLIENT_ID = "cs-sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-only-secret-not-for-any-real-account"
# Sessions are generated this far ahead of the start: they appear as the clock reaches them.
FUTURE = timedelta(days=1)
# How often the sandbox's clock catches up with the wall clock.
TICK_SECONDS = 1.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line of `python -m kore_sessions.sandbox`."""
    parser = argparse.ArgumentParser(
        prog="python -m kore_sessions.sandbox", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0: any free one; default 8765)")
    parser.add_argument("--bots", type=int, default=2, help="bots of the account (default 2)")
    parser.add_argument("--days", type=int, default=14, help="days of history (default 14)")
    parser.add_argument("--per-day", type=int, default=50, help="sessions per bot and day (default 50)")
    parser.add_argument("--page-cap", type=int, default=100, help="largest page served (default 100)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data (default 7)")
    args = parser.parse_args(argv)
    for name in ("bots", "days", "per_day", "page_cap"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def config_lines(server: SandboxServer, bots: Sequence[str], start: datetime) -> list[str]:
    """The environment that points `kore-sessions` at the server, as shell lines."""
    values = {
        "SOURCES__KORE_SESSIONS__HOST": server.url,
        "SOURCES__KORE_SESSIONS__BOT_IDS": ",".join(bots),
        "SOURCES__KORE_SESSIONS__START_DATE": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_ID": SANDBOX_CLIENT_ID,
        "SOURCES__KORE_SESSIONS__CREDENTIALS__CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
    }
    return [f"export {name}={value}" for name, value in values.items()]


def follow_wall_clock(server: SandboxServer, stop: threading.Event) -> None:
    """Move the sandbox's clock to the wall clock every tick until `stop` is set."""
    while not stop.wait(TICK_SECONDS):
        server.set_now(datetime.now(UTC))


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    args = parse_args(argv)
    now = datetime.now(UTC)
    start = now - timedelta(days=args.days)
    bots = make_bot_ids(args.bots, seed=args.seed)
    sessions = generate_sessions(bots, start, now + FUTURE, args.per_day, seed=args.seed)
    app = SandboxApp(client_id=SANDBOX_CLIENT_ID, client_secret=SANDBOX_CLIENT_SECRET, kind="bot")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with SandboxServer(sessions, apps=[app], now=now, page_cap=args.page_cap, port=args.port) as server:
        visible = len(server.visible_sessions())
        print(f"sandbox Kore.ai API on {server.url}: {args.bots} bots, {visible} sessions so far", flush=True)
        print("\n".join(config_lines(server, bots, start)), flush=True)
        print("(its clock follows the wall clock; Ctrl-C stops it)", flush=True)
        ticker = threading.Thread(target=follow_wall_clock, args=(server, stop), daemon=True)
        ticker.start()
        try:
            stop.wait()
        except KeyboardInterrupt:
            stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
