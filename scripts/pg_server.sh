#!/usr/bin/env bash
# A throw-away PostgreSQL server for tests and benchmarks, never the system's cluster.
#
#   scripts/pg_server.sh start DIR     creates a cluster in DIR/data (initdb as the `postgres` OS user when run as
#                                      root: PostgreSQL refuses to run as root), starts it on 127.0.0.1 on a free
#                                      port with its socket in DIR, creates the database `baton`, writes the URL to
#                                      DIR/url (and the port to DIR/port) and prints the URL as its last stdout line
#   scripts/pg_server.sh stop DIR      fast shutdown, then removes DIR
#   scripts/pg_server.sh restart DIR   immediate shutdown (a crash, as far as clients can tell), then starts it again
#                                      on the same port: for fault tests
#
# Installs Debian's postgresql package when it is missing. Authentication is `trust` (loopback and DIR's socket
# only). The URL names the superuser `postgres`, so tests can CREATE DATABASE one per test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"

usage() {
  echo "usage: $0 start|stop|restart DIR" >&2
  exit 2
}
die() {
  echo "pg_server: $*" >&2
  exit 1
}

[ $# -eq 2 ] || usage
cmd="$1"
dir="$2"
[ -n "$dir" ] || usage

pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$d" ] && [ -x "$d/initdb" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql (package postgresql)"
  echo "$d"
}

# Runs a command as the owner of the cluster: `postgres` when we are root, ourselves otherwise.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_server PORT: starts the cluster of $dir on 127.0.0.1:PORT; fails (with the server's log) when it does not.
start_server() {
  local port="$1" bin
  bin="$(pg_bindir)"
  if ! as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300" start >"$dir/pg_ctl.out" 2>&1; then
    cat "$dir/pg_ctl.out" >&2
    tail -n 20 "$dir/server.log" >&2 2>/dev/null || true
    return 1
  fi
}

is_ours() {  # a directory this script made (so that stop never removes anything else)
  [ -f "$1/data/PG_VERSION" ] || [ -f "$1/url" ] || [ -f "$1/initdb.log" ]
}

stop_server() {  # stop_server MODE
  local bin
  bin="$(pg_bindir)"
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_pg "$bin/pg_ctl" -D "$dir/data" -m "$1" -w -t 60 stop >/dev/null 2>&1 ||
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
}

case "$cmd" in
  start)
    # shellcheck disable=SC2046
    apt_install pg_server $(apt_missing postgresql)
    command -v python3 >/dev/null || die "python3 is needed to find a free port"
    [ -e "$dir/data" ] && die "$dir already holds a cluster (run: $0 stop $dir)"
    mkdir -p "$dir"
    dir="$(realpath "$dir")"
    # The socket path must fit in sockaddr_un (107 bytes).
    [ ${#dir} -le 80 ] || die "$dir: path too long for the server's socket (at most 80 characters)"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres: "$dir"
      runuser -u postgres -- test -w "$dir" ||
        die "$dir: the postgres user cannot reach it (a parent folder is not searchable by others)"
    fi
    bin="$(pg_bindir)"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-locale -E UTF8 --no-sync \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    port=""
    for _ in 1 2 3 4 5; do  # another process may take the free port first
      p="$(free_port)"
      if start_server "$p"; then port="$p"; break; fi
    done
    [ -n "$port" ] || die "the server did not start (log: $dir/server.log)"
    as_pg "$bin/createdb" -h "$dir" -p "$port" -U postgres baton || { stop_server immediate; die "createdb failed"; }
    url="postgresql://postgres@127.0.0.1:$port/baton"
    echo "$port" >"$dir/port"
    echo "$url" >"$dir/url"
    echo "pg_server: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data in $dir" >&2
    echo "$url"
    ;;
  stop)
    [ -e "$dir" ] || exit 0
    is_ours "$dir" || die "$dir: not a server made by $0; not removing it"
    stop_server fast
    rm -rf "$dir"
    ;;
  restart)
    is_ours "$dir" && [ -f "$dir/port" ] || die "$dir: no server made by $0"
    dir="$(realpath "$dir")"
    stop_server immediate
    start_server "$(cat "$dir/port")" || die "the server did not start again on port $(cat "$dir/port")"
    ;;
  *) usage ;;
esac
