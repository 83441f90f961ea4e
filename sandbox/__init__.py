"""A local imitation of the Kore.ai Sessions History API, for the demo and the tests.

Typical use::

    sessions = generate_sessions(bot_ids, start, end, per_day=200, seed=7)
    app = SandboxApp(client_id="cs-demo", client_secret="...")
    with SandboxServer(sessions, apps=[app], now=end) as server:
        ...  # call f"{server.url}/api/public/bot/{bot_id}/getSessions"
"""

from sandbox.auth import SandboxApp
from sandbox.data import GeneratedSession, format_time
from sandbox.errors import RATE_LIMIT_MESSAGE
from sandbox.faults import FAULT_KINDS, RateLimit
from sandbox.generator import generate_sessions, make_bot_ids
from sandbox.log import RequestRecord
from sandbox.server import SandboxServer

__all__ = [
    "FAULT_KINDS",
    "RATE_LIMIT_MESSAGE",
    "GeneratedSession",
    "RateLimit",
    "RequestRecord",
    "SandboxApp",
    "SandboxServer",
    "format_time",
    "generate_sessions",
    "make_bot_ids",
]
