#!/bin/sh
# Stand-in cloudstack-sysvmadm: stops then starts the secondary storage and
# console proxy VMs, and restarts the virtual routers, one job each through
# the management server's unauthenticated API port (8096,
# integration.api.port), as the real script does. Like the real one
# (setup/bindir/cloud-sysvmadm.in), a job that fails is an `ERROR:` line in
# its log and the script still exits 0: only the log tells.
# Options as the real one: -d DBHOST -u USER -p PASSWORD, -s (SSVMs and
# console proxies) -r (routers) -a (all), -l LOGFILE.
# Failure knob: while /var/lib/hoist-standin/sysvmadm.fail-routers exists,
# every router restart job fails.
set -eu
host=localhost user=root password='' system='' router='' log=cloud.log
while getopts d:u:p:sral: o; do
    case $o in
        d) host=$OPTARG ;; u) user=$OPTARG ;; p) password=$OPTARG ;;
        s) system=1 ;; r) router=1 ;; a) system=1 router=1 ;;
        l) log=$OPTARG ;;
        *) echo "usage: $0 -d dbhost -u user -p password [-s|-r|-a] [-l log]" >&2; exit 2 ;;
    esac
done
[ -n "$system$router" ] || { echo "usage: $0 -d dbhost -u user -p password [-s|-r|-a] [-l log]" >&2; exit 0; }
mkdir -p "${log%/*}"
MYSQL_PWD=$password; export MYSQL_PWD
sql() { mysql --batch --skip-column-names -h "$host" -u "$user" cloud -e "$1"; }
now() { date "+%Y.%m.%d-%H.%M.%S"; }
say() { echo "[$(now)] $*" >> "$log"; }
api() {
    python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8096/health', timeout=5)" 2>/dev/null
}
job=0
# One stop/start job: 1 when it succeeded.
run_job() {
    job=$((job + 1))
    case $1 in
        router) [ ! -e /var/lib/hoist-standin/sysvmadm.fail-routers ] || return 1 ;;
    esac
    api || return 1
    sql "UPDATE vm_instance SET update_count = update_count + 1, state = 'Running' WHERE id = $2"
}
# Every running VM of TYPE, one job each, logged as the real script logs
# its SSVMs and console proxies (system) or its routers (router).
restart() { # TYPE LABEL KIND
    ids=$(sql "SELECT id FROM vm_instance WHERE state = 'Running' AND removed IS NULL AND type = '$1'")
    n=$(echo $ids | wc -w)
    say "Stopping and starting $n $2(s)... "
    for id in $ids; do
        case $3 in
            system) say "INFO: Stopping $2 with id $id"; ok="INFO: Starting $2 with id $id"; ko="ERROR: Failed to stop $2 with id $id" ;;
            *) say "INFO: Restarting router with id $id"; ok="INFO: Successfully restarted domainRouter with id $id; jobId $((job + 1))"; ko="ERROR: Failed to restart domainRouter with id $id; jobId $((job + 1))" ;;
        esac
        if run_job "$3" "$id"; then say "$ok"; else say "$ko"; fi
    done
    case $3:$n in
        router:0) say "No running router vms found" ;;
        router:*) say "Done restarting router(s)." ;;
        *:0) ;;
        *) say "Done stopping and starting $2(s)." ;;
    esac
}
if [ -n "$system" ]; then
    restart SecondaryStorageVm "secondary storage vm" system
    restart ConsoleProxy "console proxy vm" system
fi
[ -z "$router" ] || restart DomainRouter "running routing vm" router
exit 0
