#!/bin/sh
# Stand-in cloudstack-sysvmadm: restarts the system VMs and virtual routers
# through the management server's unauthenticated API port (8096,
# integration.api.port), as the real script does, and logs what it did.
# Options as the real one: -d DBHOST -u USER -p PASSWORD, -s (secondary
# storage VMs) -c (console proxies) -r (routers) -a (all), -l LOGFILE.
set -eu
host=localhost user=cloud password='' types='' log=/var/log/cloudstack/management/sysvmadm.log
while getopts d:u:p:scral: o; do
    case $o in
        d) host=$OPTARG ;; u) user=$OPTARG ;; p) password=$OPTARG ;;
        s) types="$types 'SecondaryStorageVm'" ;;
        c) types="$types 'ConsoleProxy'" ;;
        r) types="$types 'DomainRouter'" ;;
        a) types="'SecondaryStorageVm' 'ConsoleProxy' 'DomainRouter'" ;;
        l) log=$OPTARG ;;
        *) echo "usage: $0 -d dbhost -u user -p password [-s|-c|-r|-a] [-l log]" >&2; exit 2 ;;
    esac
done
[ -n "$types" ] || { echo "$0: nothing to restart: give -s, -c, -r or -a" >&2; exit 2; }
mkdir -p "${log%/*}"
MYSQL_PWD=$password; export MYSQL_PWD
sql() { mysql --batch --skip-column-names -h "$host" -u "$user" cloud -e "$1"; }
port=$(sql "SELECT value FROM configuration WHERE name = 'integration.api.port'")
case $port in ''|NULL) echo "$0: integration.api.port is not set: the API is closed" | tee -a "$log" >&2; exit 1 ;; esac
python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=5)" \
    || { echo "$0: the management server does not answer on port $port" | tee -a "$log" >&2; exit 1; }
in=$(echo $types | tr ' ' ',')
n=$(sql "SELECT COUNT(*) FROM vm_instance WHERE removed IS NULL AND type IN ($in)")
echo "$(date -u +%FT%TZ) Stopping and starting $n system VM(s) and router(s) through port $port" >> "$log"
sql "UPDATE vm_instance SET update_count = update_count + 1, state = 'Running' WHERE removed IS NULL AND type IN ($in)"
echo "$(date -u +%FT%TZ) Done restarting $n system VM(s) and router(s)" >> "$log"
