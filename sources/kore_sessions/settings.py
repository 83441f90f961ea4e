"""The Sessions History API's rules and this source's defaults, each stated once."""

from datetime import timedelta

# Route of a bot-builder app: sessions of one bot, rate-limited per bot.
BOT_SESSIONS_PATH = "/api/public/bot/{bot_id}/getSessions"
# Route of a Bot Admin Console app: sessions of every bot of the account, limited per account.
ADMIN_SESSIONS_PATH = "/api/public/getSessions"
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

# Requested page size; a server may cap it lower and paging still advances by what came back.
DEFAULT_PAGE_SIZE = 1000
# Largest page size this source will ask for (the API documents none).
MAX_PAGE_SIZE = 10_000
# At most this many ids in one `sessionId` lookup.
MAX_IDS_PER_LOOKUP = 50
# Session tags come back through the id lookup only for sessions of the last 14 days of the
# server's clock (a safety margin of one day is taken off).
LOOKUP_TAGS_HORIZON = timedelta(days=13)

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
# Windows of one bot in one load package; a longer backfill takes several packages in a row.
DEFAULT_WINDOWS_PER_RUN = 3
# Sessions whose Arrow tables are joined into one dlt item: dlt pays ~3 ms per item (schema
# checks, a parquet row group), as much as building a page of 1,000 sessions; at 10 pages an
# item dlt's extract of 520k ready-made sessions took 2.3 s instead of 6.8 s, for ~10 MB held.
ARROW_BATCH_SESSIONS = 10_000
# Garbage collector thresholds while extracting (Python's are 700, 10, 10): a page of 1,000
# sessions makes ~30,000 containers, and at the defaults collections took 80% of the parse time.
COLLECTOR_THRESHOLDS = (50_000, 20, 20)
# glibc malloc arenas of the program (its default is 8 per core): each worker thread's arena
# kept what it freed; at 2 the 500k backfill's extract step peaked at 281 MB, not 353 MB.
MALLOC_ARENAS = 2
# Worker threads of one run, shared by every bot: also the most pages (parsed, ~5 MB each)
# held in memory at once.
MAX_WORKERS = 8
# Late arrivals: every run looks back this far behind its cursor.
DEFAULT_LOOKBACK_MINUTES = 60
# Platforms keep about 6 months of sessions: older days are not audited (they may be gone).
DEFAULT_RETENTION_DAYS = 180
# The audit stays this far inside the retention: a purge that comes a little early must not
# look like a difference, nor make a repair delete history the warehouse is there to keep.
RETENTION_MARGIN = timedelta(days=14)
# Version of a bot's state. Before 2, the cursor was the loader's clock (it could stand ahead
# of the server's data): such a cursor is read again one window behind, once.
STATE_VERSION = 2

# Containment values as 9.x spells them, and the old spellings that map onto them.
CONTAINMENT_TYPES = ("selfService", "dropOff", "agent")
CONTAINMENT_ALIASES = {value.lower(): value for value in CONTAINMENT_TYPES}
# Real session types (interactive or not); pre-9.0 servers put containment here instead.
SESSION_TYPES = ("interactive", "non-interactive")
# Status of an open session (the other is `closed`); it counts as self-service until it closes.
STATUS_ACTIVE = "active"
# A session whose answer has no sessionStatus (pre-9.0) counts as possibly open, and is
# refreshed, until its last activity (end_time) is at least this far in the past.
UNKNOWN_STATUS_QUIET_PERIOD = timedelta(minutes=30)

# An open session that neither the id lookup nor its own window returns (and the API does not
# call invalid) stays in refresh this long, and at least UNRESOLVED_MIN_MISSES runs: a day rides
# out an index lag or an outage of a 15-minute schedule; a session still unfound by then is gone
# without a deletion notice, and refreshing it for ever would cost a request a run. It is then
# named in the summary and left as loaded (only `invalidSessions` deletes).
UNRESOLVED_OPEN_PATIENCE = timedelta(hours=24)
# So that a loader that did not run for a day still tries a few times before giving up.
UNRESOLVED_MIN_MISSES = 4

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

# dlt names: the source, its table and the primary key.
SOURCE_NAME = "kore_sessions"
SESSIONS_TABLE = "sessions"
PRIMARY_KEY = "session_id"
# Column set on rows to delete: sessions the API no longer knows (`invalidSessions`).
DELETED_COLUMN = "deleted_in_source"


def bot_label(bot_key: str) -> str:
    """How a bot key reads in messages."""
    return "all bots" if bot_key == ALL_BOTS_KEY else f"bot {bot_key}"
