#!/usr/bin/env bash
# A throw-away MariaDB server on loopback for the alert bridge's tests, benchmark and demo
# (Debian's mariadb-server, scripts/deps/mariadb.txt; no systemd, no root password).
#
#   alert-bridge/scripts/mariadb.sh start DIR [PORT]  install a data directory (first time) and start
#                                    mariadbd on 127.0.0.1:PORT (default 23306), its socket in DIR;
#                                    with MARIADB_FOREGROUND=1 it execs mariadbd instead (a test
#                                    harness then owns the process)
#   alert-bridge/scripts/mariadb.sh createdb DIR NAME  create database NAME and a user NAME with a random
#                                    password and every right on it; write the bridge's URL
#                                    (with the password) to DIR/url-NAME, mode 0600, and print
#                                    that path
#   alert-bridge/scripts/mariadb.sh readonly DIR NAME USER  create USER (random password, written to
#                                    DIR/USER.password, mode 0600) with SELECT on the
#                                    alertsnitch tables of NAME only (alert-bridge/openscow/alarmdb-readonly.sql;
#                                    run it after the bridge created them)
#   alert-bridge/scripts/mariadb.sh sql DIR SQL       run SQL as root (unix socket)
#   alert-bridge/scripts/mariadb.sh stop DIR
#
# Root authenticates through the unix socket only; every other account is a password account
# limited to 127.0.0.1. Run as root, mariadbd runs as root (user=root), as in
# scripts/slurm-cluster.sh.
set -euo pipefail
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,20p' "$0" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for b in mariadbd mariadb mariadb-install-db; do
  command -v "$b" >/dev/null || { echo "mariadb.sh: $b missing (scripts/install-deps.sh mariadb)" >&2; exit 3; }
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cnf=$dir/my.cnf
client() { mariadb --defaults-file="$cnf" "$@"; }
pw() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }

case "$cmd" in
start)
  port=${3:-23306}
  chmod 700 "$dir"
  if [ ! -f "$cnf" ]; then
    cat > "$cnf" <<CNF
[mysqld]
datadir=$dir/data
socket=$dir/mysqld.sock
pid-file=$dir/mysqld.pid
port=$port
bind-address=127.0.0.1
skip-name-resolve
$( [ "$(id -u)" -eq 0 ] && echo user=root )
innodb_buffer_pool_size=128M
innodb_flush_log_at_trx_commit=1
max_connections=200
log-error=$dir/mysqld.err
[client]
socket=$dir/mysqld.sock
user=root
CNF
  fi
  if [ ! -d "$dir/data/mysql" ]; then
    mariadb-install-db --defaults-file="$cnf" --auth-root-authentication-method=socket \
      --skip-test-db > "$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; exit 1; }
  fi
  if [ "${MARIADB_FOREGROUND:-0}" = 1 ]; then
    exec mariadbd --defaults-file="$cnf"
  fi
  mariadbd --defaults-file="$cnf" > /dev/null 2>&1 &
  echo $! > "$dir/mariadbd.fg.pid"
  for _ in $(seq 300); do
    client -e 'SELECT 1' >/dev/null 2>&1 && break
    kill -0 "$(cat "$dir/mariadbd.fg.pid")" 2>/dev/null || { tail -20 "$dir/mysqld.err" >&2; exit 1; }
    sleep 0.1
  done
  client -e 'SELECT 1' >/dev/null || { tail -20 "$dir/mysqld.err" >&2; exit 1; }
  # Loopback only.
  if command -v ss >/dev/null; then
    bad=$(ss -Hltnp 2>/dev/null | grep "pid=$(cat "$dir/mariadbd.fg.pid")," | awk '{print $4}' | grep -vE '^(127\.[0-9.]+|\[::1\]):' || true)
    [ -z "$bad" ] || { echo "mariadb.sh: mariadbd listens off loopback: $bad" >&2; "$0" stop "$dir"; exit 1; }
  fi
  ;;
createdb)
  name=${3:?database name}
  [[ $name =~ ^[a-z0-9_]{1,32}$ ]] || { echo "mariadb.sh: bad database name $name" >&2; exit 2; }
  port=$(sed -n 's/^port=//p' "$cnf")
  p=$(pw)
  client <<SQL
CREATE DATABASE IF NOT EXISTS \`$name\`;
CREATE USER IF NOT EXISTS '$name'@'127.0.0.1' IDENTIFIED BY '$p';
ALTER USER '$name'@'127.0.0.1' IDENTIFIED BY '$p';
GRANT ALL ON \`$name\`.* TO '$name'@'127.0.0.1';
SQL
  umask 077
  echo "mysql://$name:$p@127.0.0.1:$port/$name" > "$dir/url-$name.tmp"
  mv "$dir/url-$name.tmp" "$dir/url-$name"
  echo "$dir/url-$name"
  ;;
readonly)
  name=${3:?database name}; user=${4:?user}
  [[ $name =~ ^[a-z0-9_]{1,32}$ && $user =~ ^[a-z0-9_]{1,32}$ ]] || { echo "mariadb.sh: bad name" >&2; exit 2; }
  p=$(pw)
  client -e "CREATE USER IF NOT EXISTS '$user'@'127.0.0.1' IDENTIFIED BY '$p'; ALTER USER '$user'@'127.0.0.1' IDENTIFIED BY '$p';"
  sed -e "s/\`alerts\`/\`$name\`/g" -e "s/'openscow'@'%'/'$user'@'127.0.0.1'/g" \
    "$here/../openscow/alarmdb-readonly.sql" | client
  umask 077
  echo "$p" > "$dir/$user.password"
  echo "$dir/$user.password"
  ;;
sql)
  client -e "${3:?SQL}"
  ;;
stop)
  [ -f "$dir/mariadbd.fg.pid" ] || exit 0
  pid=$(cat "$dir/mariadbd.fg.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/mariadbd.fg.pid"
  ;;
*)
  echo "mariadb.sh: unknown command $cmd" >&2; exit 2 ;;
esac
