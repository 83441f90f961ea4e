"""The Kore.ai public APIs' shared rules and this source's defaults for every resource, each
stated once: auth, windows, pages, rate limits, retries, timeouts, state."""

from datetime import timedelta

# Key under which the admin (all bots) route keeps its cursor, open sessions and limiter.
ALL_BOTS_KEY = "*"

# Header that carries the JWT (Kore does not use `Authorization`).
AUTH_HEADER = "auth"

# Signing algorithms Kore apps accept: shared secret (HS*) or the app's key pair (RS*).
SECRET_ALGORITHMS = ("HS256", "HS512")
KEY_PAIR_ALGORITHMS = ("RS256", "RS512")
DEFAULT_ALGORITHM = "HS256"

# The span of one request must be strictly under 7 days, or the API answers an error.
MAX_WINDOW_SPAN = timedelta(days=7)

# Default span of a window: a margin under the limit, so no server's rounding can reject it.
DEFAULT_WINDOW_HOURS = 6 * 24

# The last window of a run reaches this far past the loader's clock: a server whose clock
# leads shows sessions that started "in the future", and the API takes a dateTo in the future
# (it makes one itself, dateFrom + 7 days, when only dateFrom is given).
CLOCK_SKEW_ALLOWANCE = timedelta(hours=1)

# A package also takes the windows that end a bot's walk when they own at most this share of the
# time of the windows it keeps (a package at most 25% larger): a package of their own costs a
# load step and, into DuckDB, a checkpoint that merges their small row groups into the last ones
# (figures: the README's "No package for a short tail").
SHORT_TAIL_SHARE = 0.25

# Requested page size; a server may cap it lower and paging still advances by what came back.
DEFAULT_PAGE_SIZE = 1000

# Largest page size this source will ask for (the API documents none).
MAX_PAGE_SIZE = 10_000

# The vendor's rolling analytics limits, per bot (per account on the admin route).
DEFAULT_REQUESTS_PER_MINUTE = 60
DEFAULT_REQUESTS_PER_HOUR = 1800

# The client's rolling windows are this much longer than the server's, so requests that
# arrive closer together than they were sent (network jitter) still stay within the limit.
LIMIT_WINDOW_MARGIN = 1.05

# Requests of one bot waiting or running at once (windows and pages fetched concurrently);
# the bot's limiter still decides when each is sent.
DEFAULT_MAX_IN_FLIGHT = 4

# Upper bound of max_in_flight: more only queues behind the limiter.
MAX_IN_FLIGHT = 16

# Worker threads of one run, shared by every bot: also the most pages (parsed, ~5 MB each)
# held in memory at once.
MAX_WORKERS = 8

# Version of a bot's state. Before 2, the cursor was the loader's clock (it could stand ahead
# of the server's data): such a cursor is read again one window behind, once.
STATE_VERSION = 2

# Retry policy: attempts per request, the backoff's first and longest wait, and a time bound.
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BACKOFF_INITIAL = 1.0
DEFAULT_BACKOFF_MAX = 60.0
DEFAULT_RETRY_DEADLINE = 600.0

# A 429 without Retry-After waits at least this long: a rolling minute needs time to drain.
RATE_LIMITED_MIN_WAIT = 5.0

# HTTP timeouts in seconds: connect, and read of a whole answer.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0


def bot_label(bot_key: str) -> str:
    """How a bot key reads in messages."""
    return "all bots" if bot_key == ALL_BOTS_KEY else f"bot {bot_key}"
