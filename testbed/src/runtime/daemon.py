#!/usr/bin/python3
"""Stand-in product daemon for hoist's tests.

It really listens, answers GET /health, refuses to be healthy when its
database schema is not the one this build needs, refuses to start before
the daemons it depends on answer, and reads a key=value conffile at start.
"""
import argparse
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

p = argparse.ArgumentParser()
p.add_argument("--name", required=True)
p.add_argument("--version", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--db", help="ENGINE:DATABASE (postgresql or mariadb)")
p.add_argument("--schema", type=int, help="schema version this build needs")
p.add_argument("--needs", action="append", default=[], help="port of a local daemon that must answer first")
p.add_argument("--config", help="key=value file read at start")
p.add_argument("--path", action="append", default=[], help="another path answered like /health (CloudStack's /client/)")
p.add_argument("--require", action="append", default=[], help="KEY=VALUE the conffile must hold, or the daemon does not start")
p.add_argument("--port-setting", help="a configuration row (table configuration, column value) naming another port to listen on too")
a = p.parse_args()

config = {}
if a.config:
    try:
        with open(a.config) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    config[k.strip()] = v.strip()
    except OSError as e:
        sys.exit(f"{a.name}: cannot read {a.config}: {e}")
port = int(config.get("port", a.port))
for req in a.require:
    k, v = req.split("=", 1)
    if config.get(k) != v:
        sys.exit(f"{a.name}: {a.config}: {k} is {config.get(k)!r}, this version needs {v!r}")


def schema_version():
    if not a.db:
        return None
    engine, db = a.db.split(":", 1)
    q = "SELECT max(version) FROM schema_version"
    if engine == "postgresql":
        cmd = ["runuser", "-u", "postgres", "--", "psql", "-qAt", "-d", db, "-c", q]
    else:
        cmd = ["mysql", "--batch", "--skip-column-names", db, "-e", q]
    return query(cmd)


def query(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return int(r.stdout.strip()) if r.returncode == 0 else -1
    except (ValueError, subprocess.SubprocessError):
        return -1


def healthy(dep_port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{dep_port}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


deadline = time.monotonic() + 10
for dep in a.needs:
    while not healthy(int(dep)):
        if time.monotonic() > deadline:
            sys.exit(f"{a.name}: needs the daemon on port {dep}, which does not answer")
        time.sleep(0.2)


def setting_port():
    """The port a configuration row names (MariaDB), or None."""
    if not (a.port_setting and a.db):
        return None
    db = a.db.split(":", 1)[1]
    q = f"SELECT value FROM configuration WHERE name = '{a.port_setting}'"
    try:
        r = subprocess.run(["mysql", "--batch", "--skip-column-names", db, "-e", q],
                           capture_output=True, text=True, timeout=10)
    except subprocess.SubprocessError:
        return None
    v = r.stdout.strip()
    return int(v) if r.returncode == 0 and v.isdigit() else None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/health" and self.path not in a.path:
            self.send_error(404)
            return
        s = schema_version()
        ok = a.schema is None or s == a.schema
        body = json.dumps({"name": a.name, "version": a.version, "schema": s,
                           "expected_schema": a.schema, "config": config}).encode()
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
extra = setting_port()
if extra and extra != port:
    # CloudStack's unauthenticated API port (integration.api.port), read
    # from the database at start: a change needs a restart.
    second = http.server.ThreadingHTTPServer(("0.0.0.0", extra), Handler)
    threading.Thread(target=second.serve_forever, daemon=True).start()
    print(f"{a.name}: API port {extra} (integration.api.port)", flush=True)
addr = os.environ.get("NOTIFY_SOCKET")
if addr:
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        s.sendall(b"READY=1")
print(f"{a.name} {a.version} listening on {port}", flush=True)
server.serve_forever()
