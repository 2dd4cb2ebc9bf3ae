#!/bin/sh
# Stand-in cloudstack-agent-upgrade: renames the old bridge names
# (cloudVirBr<VLAN>) to the new ones (br<NIC>-<VLAN>) in agent.properties
# and logs each rename, as the real script does with the host's bridges.
set -eu
props=/etc/cloudstack/agent/agent.properties
log=/var/log/cloudstack/agent/agent-upgrade.log
mkdir -p "${log%/*}"
for old in $(grep -o 'cloudVirBr[0-9]*' "$props" | sort -u); do
    new="breth0-${old#cloudVirBr}"
    sed -i "s/\b$old\b/$new/g" "$props"
    echo "renamed bridge $old to $new" >> "$log"
done
echo "bridge names upgraded" >> "$log"
