#!/usr/bin/python3
"""Stand-in cloudstack-setup-encryption: encrypts the database passwords of
db.properties with the management server key (jasypt's
PBEWithMD5AndDES: MD5 applied 1000 times to key + 8-byte salt gives the DES
key and IV; base64 of salt + DES-CBC ciphertext, PKCS#5 padding), writes
the key file for encryption type `file`, and the database key encrypted
with it as db.cloud.encrypt.secret, as the real one does. Running it again
with the same keys leaves already encrypted values alone."""
import argparse
import base64
import hashlib
import os
import subprocess
import sys

p = argparse.ArgumentParser()
p.add_argument("-e", dest="type", default="file", choices=["file", "web"])
p.add_argument("-m", dest="mskey", default="password")
p.add_argument("-k", dest="dbkey", default="password")
a = p.parse_args()

etc = "/etc/cloudstack/management"
props = f"{etc}/db.properties"


def encrypt(text, password):
    salt = os.urandom(8)
    d = password.encode() + salt
    for _ in range(1000):
        d = hashlib.md5(d).digest()
    r = subprocess.run(
        ["openssl", "enc", "-des-cbc", "-K", d[:8].hex(), "-iv", d[8:16].hex(),
         "-provider", "legacy", "-provider", "default"],
        input=text.encode(), capture_output=True, check=True)
    return "ENC(" + base64.b64encode(salt + r.stdout).decode() + ")"


lines = open(props).read().splitlines()
out, seen = [], set()
for line in lines:
    k, sep, v = line.partition("=")
    k = k.strip()
    if sep and k in ("db.cloud.password", "db.usage.password") and not v.startswith("ENC("):
        line = f"{k}={encrypt(v, a.mskey)}"
    elif sep and k in ("db.cloud.encryption.type", "db.cloud.encrypt.secret"):
        continue
    out.append(line)
out.append(f"db.cloud.encryption.type={a.type}")
out.append(f"db.cloud.encrypt.secret={encrypt(a.dbkey, a.mskey)}")
tmp = props + ".tmp"
with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w") as f:
    f.write("\n".join(out) + "\n")
os.replace(tmp, props)
if a.type == "file":
    with open(os.open(f"{etc}/key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(a.mskey + "\n")
print(f"encrypted {props} (type {a.type})")
