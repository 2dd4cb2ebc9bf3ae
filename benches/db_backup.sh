#!/usr/bin/env bash
# Backup of a PostgreSQL database of about 1 GB (SIZE_MB): hoist's `db
# backup` step, run through `hoist upgrade` (pg_dump -Fc into a temporary
# file, fsync, `pg_restore --list`, rename, fsync of the directory, the
# backups index), against a plain `pg_dump -Fc -f` (which fsyncs its file
# too). Issue 5's target: hoist within 1.1x. Runs as root; starts its own
# PostgreSQL 15 in a temporary directory on disk (not tmpfs), stops it and
# removes everything at the end. Alternates the two, RUNS times each, and
# prints the medians and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-3}
PG_BIN=/usr/lib/postgresql/15/bin
target=${CARGO_TARGET_DIR:-target}
profile=${PROFILE:-release}
if [ "$profile" = release ]; then cargo build -q --release -p hoist; else cargo build -q -p hoist; fi
hoist=$(realpath "$target/$profile/hoist")

work=$(mktemp -d /var/tmp/hoist-bench-db.XXXXXX)
chown postgres: "$work"
chmod 755 "$work"
started=
cleanup() {
  if [ -n "$started" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work/data" -m immediate -w -t 60 stop >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

as_pg() { runuser -u postgres -- "$@"; }
export PGHOST=$work PGPORT=5432
as_pg "$PG_BIN/initdb" --no-sync -E UTF8 --locale=C -A peer -D "$work/data" >/dev/null
started=1
as_pg "$PG_BIN/pg_ctl" -D "$work/data" -l "$work/server.log" -w -t 120 start \
  -o "-k $work -p 5432 -c listen_addresses= -c max_wal_size=4GB -c checkpoint_timeout=30min" >/dev/null

# About 200 bytes a row on disk (884 MB for 1024 at 230), of text that
# compresses like real data (hex digests), not like a run of one character.
rows=$(( SIZE_MB * 1024 * 1024 / 200 ))
as_pg psql -X -q -d postgres -c 'CREATE DATABASE bench'
as_pg psql -X -q -d bench -c "CREATE TABLE t (id bigint PRIMARY KEY, a text, b text);
  INSERT INTO t SELECT i, md5(i::text), md5((i*7)::text) || md5((i*13)::text) || md5((i*17)::text) FROM generate_series(1, $rows) i;"
as_pg psql -X -q -d bench -c 'VACUUM ANALYZE t'
size=$(as_pg psql -X -A -t -d bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")
echo "database bench: $size ($rows rows)"

mkdir -p "$work/plain" "$work/product"
chown postgres: "$work/plain"
echo 1.0 > "$work/product/VERSION"
cat > "$work/product/recipe.toml" <<EOF
[product]
name = "bench"
version = { file = "$work/product/VERSION" }

[[paths]]
id = "main"
from = "1.*"
to = "2.0"

[[steps]]
id = "backup"
phase = "backup"
db = { op = "backup", engine = "postgresql", database = "bench", dump = "$work/hoist/bench.dump", keep = 1, credentials = { os_user = "postgres" } }
EOF

now() { date +%s.%N; }
plain=() hoisted=()
for i in $(seq "$RUNS"); do
  sync
  t0=$(now)
  as_pg pg_dump -Fc -f "$work/plain/bench.dump" bench
  t1=$(now)
  plain+=("$(echo "$t1 - $t0" | bc)")
  sync
  t0=$(now)
  "$hoist" --state-dir "$work/state" upgrade --yes -r "$work/product/recipe.toml" >/dev/null
  t1=$(now)
  hoisted+=("$(echo "$t1 - $t0" | bc)")
  echo "run $i: pg_dump -Fc ${plain[-1]} s, hoist ${hoisted[-1]} s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p=$(median "${plain[@]}")
h=$(median "${hoisted[@]}")
echo "dump size: $(stat -c %s "$work/hoist/bench.dump") bytes (plain $(stat -c %s "$work/plain/bench.dump"))"
echo "median: pg_dump -Fc $p s, hoist db backup $h s, ratio $(echo "scale=3; $h / $p" | bc)"
