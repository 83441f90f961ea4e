"""The Sessions History API's own rules (routes, lookups, containment, statuses) and the
`sessions` table's names, each stated once."""

from datetime import timedelta

# Route of a bot-builder app: sessions of one bot, rate-limited per bot.
BOT_SESSIONS_PATH = "/api/public/bot/{bot_id}/getSessions"

# Route of a Bot Admin Console app: sessions of every bot of the account, limited per account.
ADMIN_SESSIONS_PATH = "/api/public/getSessions"
# The app scope both routes need, as the vendor names it (in hints on 401 and 403).
SESSIONS_SCOPE = "Bot Sessions"

# At most this many ids in one `sessionId` lookup.
MAX_IDS_PER_LOOKUP = 50

# Session tags come back through the id lookup only for sessions of the last 14 days of the
# server's clock (a safety margin of one day is taken off).
LOOKUP_TAGS_HORIZON = timedelta(days=13)

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

# dlt names: the sessions table and its primary key.
SESSIONS_TABLE = "sessions"
PRIMARY_KEY = "session_id"

# Column set on rows to delete: sessions the API no longer knows (`invalidSessions`).
DELETED_COLUMN = "deleted_in_source"

# A list the API sends in a session's `tags` beside userTags and sessionTags (`altText`), empty
# in every answer seen: an empty list makes no column (dlt's rule), so the columnar path takes a
# page with it empty, and leaves any other to the record transform (which keeps its values).
EMPTY_TAG_LISTS = frozenset({"altText"})
