#!/usr/bin/env bash
# CI services for the test suite, on Debian 12 as root: PostgreSQL on
# 127.0.0.1:5432 with role/password kore/kore and database kore_test, and
# Chromium at /usr/bin/chromium (driven by Python playwright; no chromium-driver).
# Idempotent: installs only what is missing (no apt-get call when everything is
# present), starts PostgreSQL only if it does not answer yet. Safe to rerun.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
DB_USER=kore
DB_PASS=kore
DB_NAME=kore_test
WAIT_SECONDS=30

die() { echo "services: ERROR: $*" >&2; exit 1; }

# --- 1. Debian packages, only if missing ------------------------------------
missing=()
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
if ((${#missing[@]})); then
    echo "services: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || die "no PostgreSQL server binary after install"
[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium missing after install"

# Newest installed server version (e.g. 15).
pg_ver=$(ls -d /usr/lib/postgresql/*/bin/postgres | awk -F/ '{print $5}' | sort -n | tail -1)

# psql as the postgres superuser over the local socket (peer auth). Run from /
# so postgres does not warn about an unreadable current directory.
pg_super() { (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 "$@"); }

ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }

# --- 2. Cluster on port 5432, started unless already answering ----------------
if ! ready; then
    # pg_lsclusters -h: "ver name port status owner datadir logfile".
    cluster=$(pg_lsclusters -h | awk -v p="$PG_PORT" '$3 == p {print $1 " " $2; exit}')
    if [[ -z $cluster ]]; then
        if pg_lsclusters -h | awk -v v="$pg_ver" '$1 == v && $2 == "main" {f=1} END {exit !f}'; then
            die "cluster $pg_ver/main exists but not on port $PG_PORT (see pg_lsclusters)"
        fi
        echo "services: creating cluster $pg_ver/main"
        # C.UTF-8 always exists on Debian; avoids failures from an unset/ungenerated locale.
        pg_createcluster --locale C.UTF-8 -p "$PG_PORT" "$pg_ver" main >/dev/null
        cluster="$pg_ver main"
    fi
    read -r c_ver c_name <<<"$cluster"
    echo "services: starting cluster $c_ver/$c_name"
    # Works without systemd; as root it drops to the cluster owner itself.
    pg_ctlcluster "$c_ver" "$c_name" start || true   # "already running" is fine; readiness decides
    for ((i = 0; i < WAIT_SECONDS; i++)); do
        ready && break
        sleep 1
    done
    ready || die "PostgreSQL not accepting connections on $PG_HOST:$PG_PORT after ${WAIT_SECONDS}s (see /var/log/postgresql/postgresql-$c_ver-$c_name.log)"
fi

# --- 3. Role and database (idempotent) ----------------------------------------
# The role's password is (re)set every run so password auth is known-good;
# Debian's pg_hba already allows scram-sha-256 for host 127.0.0.1/32.
pg_super -d postgres <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASS';
  ELSE
    ALTER ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASS';
  END IF;
END
\$\$;
SQL
if [[ -z $(pg_super -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ]]; then
    # UTF-8 whatever locale the cluster was made with (apt's cluster follows the machine's).
    pg_super -d postgres -c "CREATE DATABASE $DB_NAME OWNER $DB_USER ENCODING 'UTF8' TEMPLATE template0 LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
fi

# Commits of the test database do not wait for their WAL to reach the disk: the tests build
# and drop thousands of tables, and a crash of the server loses at most the last moments of a
# test database (never corrupts it). The setting is the database's, not the server's.
pg_super -d postgres -c "ALTER DATABASE $DB_NAME SET synchronous_commit = off"

# Prove password auth over TCP works as the tests will use it.
server_ver=$(PGPASSWORD=$DB_PASS psql -X -tA -h "$PG_HOST" -p "$PG_PORT" -U "$DB_USER" -d "$DB_NAME" \
    -c 'SHOW server_version' 2>&1) \
    || die "cannot log in as $DB_USER to $DB_NAME on $PG_HOST:$PG_PORT: $server_ver"
server_ver=${server_ver%% *}   # "15.14 (Debian 15.14-0+deb12u1)" -> "15.14"

# --- 4. Summary -----------------------------------------------------------------
chromium_ver=$(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}') \
    || die "/usr/bin/chromium --version failed"
echo "services: postgresql $server_ver on $PG_HOST:$PG_PORT (db $DB_NAME), chromium $chromium_ver"
