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


def schema_version():
    if not a.db:
        return None
    engine, db = a.db.split(":", 1)
    q = "SELECT max(version) FROM schema_version"
    if engine == "postgresql":
        cmd = ["runuser", "-u", "postgres", "--", "psql", "-qAt", "-d", db, "-c", q]
    else:
        cmd = ["mysql", "--batch", "--skip-column-names", db, "-e", q]
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


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/health":
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
addr = os.environ.get("NOTIFY_SOCKET")
if addr:
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        s.sendall(b"READY=1")
print(f"{a.name} {a.version} listening on {port}", flush=True)
server.serve_forever()
