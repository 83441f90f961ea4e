"""The source's defaults that are not the API's: packages, memory, lookback, retention, names."""

from datetime import timedelta

# Windows of one bot in one load package; a longer backfill takes several packages in a row.
DEFAULT_WINDOWS_PER_PACKAGE = 3

# Windows of one bot in a load package that appends into DuckDB (a first backfill), at most (but
# for a short tail, `api.rules.SHORT_TAIL_SHARE`): 60 days at the default window, so a first
# window with few sessions (the package's estimate) does not take a whole history into one
# package; a crash loses at most the package in progress.
DEFAULT_APPENDED_WINDOWS_PER_PACKAGE = 10

# About how many sessions a load package that appends into DuckDB holds, all its bots together
# (cut after each bot's first window, as a merged one): two of DuckDB's row groups (122,880 rows).
# DuckDB writes an insert of a row group or more straight to its file, compressed on every core,
# and a smaller one on one thread at the checkpoint, which also rewrites the row group the last
# package left unfilled. 500k sessions appended in 7 packages of 3 windows spent 9.2 s in the
# load steps (5.3 s of it checkpoints) and took 21 s in all; in 3 packages of 10 windows, 6.6 s
# and 17 s, peaking at 468-478 MB instead of 446-456 MB. Into PostgreSQL the larger packages took
# 17.0 s, not 15.7 s, and peaked at 568 MB, not 398 MB: there a first backfill keeps its windows.
SESSIONS_PER_APPENDED_PACKAGE = 250_000

# About how many sessions a load package that dlt merges holds, all its bots together: after a
# bot's first window the package keeps as many of its windows as hold its share at that
# window's count. DuckDB holds a merge in memory: with its limit at 160 MB, the merge of
# 300,000 sessions in one package ran out of it, and of 150,000 at 100 MB.
SESSIONS_PER_MERGED_PACKAGE = 50_000

# Sessions whose Arrow tables are joined into one dlt item: dlt pays ~3 ms per item (schema
# checks, a parquet row group), as much as building a page of 1,000 sessions; at 10 pages an
# item dlt's extract of 520k ready-made sessions took 2.3 s instead of 6.8 s, for ~10 MB held.
ARROW_BATCH_SESSIONS = 10_000

# Messages whose Arrow tables are joined into one dlt item: a message row is a third of a
# session's, and a v2 page holds up to 10,000 of them, so a batch is about one page.
ARROW_BATCH_MESSAGES = 10_000

# Message pages of one bot requested or held at once: a page of 10,000 messages is ~10 MB of
# JSON and ~60 MB once parsed and made rows, so 4 a bot (max_in_flight's default) held ~700 MB
# in the bench's backfill; the API's 60 requests a minute, not concurrency, bound the real pace.
MESSAGE_PAGES_IN_FLIGHT = 2

# Garbage collector thresholds while extracting (Python's are 700, 10, 10): a page of 1,000
# sessions makes ~30,000 containers, and at the defaults collections took 80% of the parse time.
COLLECTOR_THRESHOLDS = (50_000, 20, 20)

# glibc malloc arenas of the program (its default is 8 per core): each worker thread's arena
# kept what it freed; at 2 the 500k backfill's extract step peaked at 281 MB, not 353 MB.
MALLOC_ARENAS = 2

# Late arrivals: every run looks back this far behind its cursor.
DEFAULT_LOOKBACK_MINUTES = 60

# Platforms keep about 6 months of sessions: older days are not audited (they may be gone).
DEFAULT_RETENTION_DAYS = 180

# The audit stays this far inside the retention: a purge that comes a little early must not
# look like a difference, nor make a repair delete history the warehouse is there to keep.
RETENTION_MARGIN = timedelta(days=14)

# dlt's name of the source (its state, its config section).
SOURCE_NAME = "kore_sessions"

# Arrow batches of a package fetched ahead (while dlt loads the last) that may wait for its
# extract: a package's fetching stops there, so at most this many batches of
# ARROW_BATCH_SESSIONS records (about 6 MB each) are held beside the load.
PACKAGE_AHEAD_BATCHES = 4
