#!/bin/sh
# Stand-in schema migration: migrate ENGINE DATABASE DIR
# Applies DIR/N.sql for every N above the database's schema version, up to
# DIR/target, each with its version bump in one transaction. Refuses a
# database newer than the package (a downgrade needs a restore).
set -eu
engine=$1 db=$2 dir=$3
target=$(cat "$dir/target")
sql() {
    case $engine in
        postgresql) runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qAt -d "$db" ;;
        mariadb) mysql --batch --skip-column-names "$db" ;;
        *) echo "unknown engine $engine" >&2; exit 2 ;;
    esac
}
case $engine in
    postgresql)
        if ! runuser -u postgres -- psql -qAt -d postgres -c "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1; then
            runuser -u postgres -- createdb "$db"
        fi ;;
    mariadb) mysql -e "CREATE DATABASE IF NOT EXISTS \`$db\`" ;;
esac
echo "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL);" | sql
current=$(echo "SELECT coalesce(max(version), 0) FROM schema_version;" | sql)
if [ "$current" -gt "$target" ]; then
    echo "database $db has schema $current, newer than $target: restore a backup to downgrade" >&2
    exit 1
fi
for f in $(ls "$dir" | grep -E '^[0-9]+\.sql$' | sort -n); do
    v=${f%.sql}
    if [ "$v" -gt "$current" ] && [ "$v" -le "$target" ]; then
        { echo "BEGIN;"; cat "$dir/$f"; echo; echo "DELETE FROM schema_version; INSERT INTO schema_version VALUES ($v);"; echo "COMMIT;"; } | sql
        echo "$db: migrated to schema $v"
    fi
done
