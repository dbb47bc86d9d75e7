#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the scale-out tests (and for trying scale-out by hand).
#
#   eval "$(scripts/postgres.sh start)"   # prints `export TORCHTRANSFER_PG_URL=postgresql://postgres:PW@127.0.0.1:PORT`
#   scripts/postgres.sh stop
#
# Installs Debian's `postgresql` package when no server binaries are found (needs root and apt). The cluster
# runs as the `postgres` system user when started by root (PostgreSQL refuses to run as root), keeps its data
# in $PGDATA_DIR (default /tmp/torchtransfer-pg), listens only on 127.0.0.1:$PG_PORT (default 55432) and
# requires a password (scram-sha-256) that is generated on every start. Only status goes to stderr, so the
# stdout of `start` can be eval'ed.
set -euo pipefail

PG_PORT="${PG_PORT:-55432}"
PGDATA_DIR="${PGDATA_DIR:-/tmp/torchtransfer-pg}"
say() { echo "postgres.sh: $*" >&2; }

pg_bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" ]] && { echo "$dir"; return 0; }
    done
    return 1
}

install_if_missing() {
    pg_bindir >/dev/null && return 0
    [[ $(id -u) -eq 0 ]] || { say "no PostgreSQL binaries and not root: install the 'postgresql' package"; exit 1; }
    say "installing PostgreSQL from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
}

# Run a command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    install_if_missing
    local bin password pwfile
    bin="$(pg_bindir)"
    stop_quietly "$bin"
    rm -rf "$PGDATA_DIR"
    mkdir -p "$PGDATA_DIR"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$PGDATA_DIR"
    chmod 700 "$PGDATA_DIR"
    password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    pwfile="$(mktemp)"
    printf '%s\n' "$password" >"$pwfile"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$pwfile"
    as_owner "$bin/initdb" -D "$PGDATA_DIR" -U postgres --pwfile="$pwfile" --auth=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >"$PGDATA_DIR.initdb.log" 2>&1 \
        || { say "initdb failed:"; cat "$PGDATA_DIR.initdb.log" >&2; rm -f "$pwfile"; exit 1; }
    rm -f "$pwfile"
    # Prefect, MLflow (one worker), Optuna workers and Dask processes each hold a few connections.
    as_owner "$bin/pg_ctl" -D "$PGDATA_DIR" -w -t 60 -l "$PGDATA_DIR/server.log" \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PGDATA_DIR -c max_connections=300" start >&2
    say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (data $PGDATA_DIR)"
    echo "export TORCHTRANSFER_PG_URL=postgresql://postgres:$password@127.0.0.1:$PG_PORT"
}

stop_quietly() {
    local bin="$1"
    if [[ -f "$PGDATA_DIR/postmaster.pid" ]]; then
        as_owner "$bin/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >&2 || true
    fi
}

stop() {
    local bin
    bin="$(pg_bindir)" || return 0
    stop_quietly "$bin"
    rm -rf "$PGDATA_DIR" "$PGDATA_DIR.initdb.log"
    say "stopped and removed $PGDATA_DIR"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
