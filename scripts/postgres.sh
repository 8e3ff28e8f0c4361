#!/usr/bin/env bash
# A throw-away PostgreSQL cluster on loopback for the alert bridge's tests, benchmark and demo.
#
#   scripts/postgres.sh start DIR [PORT]   initdb DIR (first time), start on 127.0.0.1:PORT
#                                          (default 24432) with its socket in DIR, create the
#                                          role "bridge" with a random password and the database
#                                          "alerts"; writes the URL (with the password) to
#                                          DIR/url, mode 0600, and prints that path
#   scripts/postgres.sh stop DIR [fast|immediate]
#   scripts/postgres.sh status DIR
#
# Run as root, the server runs as the "postgres" user (PostgreSQL refuses root); DIR's parent
# must be traversable by it (e.g. under /tmp). Debian's postgresql 15 (scripts/deps/postgres.txt).
set -euo pipefail
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,14p' "$0" >&2; exit 2; }
pgbin=${PGBIN:-}
if [ -z "$pgbin" ]; then
  for v in 17 16 15; do [ -x /usr/lib/postgresql/$v/bin/initdb ] && { pgbin=/usr/lib/postgresql/$v/bin; break; }; done
fi
[ -n "$pgbin" ] || { echo "postgres.sh: PostgreSQL is not installed (scripts/install-deps.sh postgres)" >&2; exit 3; }
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
data=$dir/data

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  port=${3:-24432}
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  chmod 700 "$dir"
  if [ ! -s "$data/PG_VERSION" ]; then
    as_pg "$pgbin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  # Loopback only: TCP on 127.0.0.1, the socket in DIR.
  as_pg "$pgbin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=100" >/dev/null \
    || { tail -20 "$dir/postgres.log" >&2; exit 1; }
  if [ ! -s "$dir/url" ]; then
    pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    as_pg "$pgbin/psql" -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<SQL >/dev/null
CREATE ROLE bridge LOGIN PASSWORD '$pw';
CREATE DATABASE alerts OWNER bridge;
SQL
    umask 077
    echo "postgres://bridge:$pw@127.0.0.1:$port/alerts" > "$dir/url.tmp"
    mv "$dir/url.tmp" "$dir/url"
    [ "$(id -u)" -ne 0 ] || chown root: "$dir/url"
  fi
  echo "$dir/url"
  ;;
stop)
  mode=${3:-fast}
  [ -s "$data/postmaster.pid" ] || exit 0
  as_pg "$pgbin/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop >/dev/null
  ;;
status)
  as_pg "$pgbin/pg_ctl" -D "$data" status
  ;;
*)
  echo "postgres.sh: unknown command $cmd" >&2; exit 2 ;;
esac
