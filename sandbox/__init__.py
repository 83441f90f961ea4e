"""A local imitation of the Kore.ai Sessions History and Conversation History APIs, for the demo
and the tests. Each session's messages are derived from the session (``conversation``).

Typical use::

    sessions = generate_sessions(bot_ids, start, end, per_day=200, seed=7)
    app = SandboxApp(client_id="cs-demo", client_secret="...")
    with SandboxServer(sessions, apps=[app], now=end) as server:
        ...  # call f"{server.url}/api/public/bot/{bot_id}/getSessions" (or getMessagesV2)
        server.visible_messages(bot_id)  # what the messages routes serve now, every channel
"""

from kore_sessions.sandbox.auth import SandboxApp
from kore_sessions.sandbox.chat_message import GeneratedMessage
from kore_sessions.sandbox.conversations import conversation
from kore_sessions.sandbox.data import GeneratedSession, format_time
from kore_sessions.sandbox.errors import RATE_LIMIT_MESSAGE
from kore_sessions.sandbox.faults import FAULT_KINDS, RateLimit
from kore_sessions.sandbox.generator import generate_sessions, make_bot_ids
from kore_sessions.sandbox.log import RequestRecord
from kore_sessions.sandbox.server import SandboxServer

__all__ = [
    "FAULT_KINDS",
    "RATE_LIMIT_MESSAGE",
    "GeneratedMessage",
    "GeneratedSession",
    "RateLimit",
    "RequestRecord",
    "SandboxApp",
    "SandboxServer",
    "conversation",
    "format_time",
    "generate_sessions",
    "make_bot_ids",
]
