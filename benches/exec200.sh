#!/usr/bin/env bash
# The whole-run cost of 200 trivial steps: hoist (journal fully durable:
# WAL, synchronous=FULL, two transactions per step), the same commands in a
# bash script, and ansible-playbook with a local connection. Side by side in
# one run, so the ratios hold on a noisy machine.
#
#   cargo build --release && benches/exec200.sh [N]
#
# Needs hyperfine and ansible-core (apt-get install hyperfine ansible-core).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
hoist=${HOIST:-target/release/hoist}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo 1.0 > "$work/VERSION"
{
  printf '[product]\nname = "bench"\nversion = { file = "%s/VERSION" }\n\n' "$work"
  printf '[[paths]]\nid = "main"\nfrom = "1.*"\nto = "2.0"\n\n'
  for i in $(seq 1 "$n"); do
    printf '[[steps]]\nid = "s%d"\nphase = "install"\nexec = { argv = ["/bin/true"] }\n\n' "$i"
  done
} > "$work/recipe.toml"
{
  echo '#!/bin/bash'
  echo 'set -e'
  for _ in $(seq 1 "$n"); do echo /bin/true; done
} > "$work/steps.sh"
chmod +x "$work/steps.sh"
{
  echo '- hosts: localhost'
  echo '  connection: local'
  echo '  gather_facts: false'
  echo '  tasks:'
  for i in $(seq 1 "$n"); do
    printf '    - name: s%d\n      command: /bin/true\n' "$i"
  done
} > "$work/playbook.yml"

# Each hoist run starts from a fresh state directory (a new journal). The
# tmpfs run shows hoist's cost without the durable commits (fsync is free
# there): the difference between the two is the price of durability.
shm=$(mktemp -d -p /dev/shm)
trap 'rm -rf "$work" "$shm"' EXIT
hyperfine -N --warmup 2 --runs "${RUNS:-20}" --export-json "$work/fast.json" \
  --prepare "rm -rf $work/state $shm/state" \
  -n "hoist ($n exec steps, durable journal)" "$hoist --state-dir $work/state upgrade --yes -r $work/recipe.toml" \
  -n "bash ($n commands)" "bash $work/steps.sh" \
  -n "hoist, journal on tmpfs" "$hoist --state-dir $shm/state upgrade --yes -r $work/recipe.toml"
hyperfine --runs "${ANSIBLE_RUNS:-2}" --export-json "$work/ansible.json" \
  -n "ansible-playbook ($n tasks, local)" "ANSIBLE_NOCOLOR=1 ansible-playbook -i localhost, $work/playbook.yml"

python3 - "$work/fast.json" "$work/ansible.json" <<'PY'
import json, sys
fast = json.load(open(sys.argv[1]))["results"]
ans = json.load(open(sys.argv[2]))["results"][0]["mean"]
hoist, bash, shm = fast[0]["mean"], fast[1]["mean"], fast[2]["mean"]
print(f"hoist {hoist*1000:.1f} ms, bash {bash*1000:.1f} ms, hoist on tmpfs {shm*1000:.1f} ms, ansible {ans:.2f} s")
print(f"hoist / bash = {hoist/bash:.2f}x (on tmpfs {shm/bash:.2f}x); ansible / hoist = {ans/hoist:.0f}x")
PY
