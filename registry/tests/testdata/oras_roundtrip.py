"""Pushes an artifact to a Cube registry with the `oras` Python client and
pulls it back: once as a monolithic upload, once chunked.

usage: oras_roundtrip.py HOST:PORT WORKDIR
Prints "ok <repo>" per round trip; exits non-zero on any mismatch.
"""
import os
import sys

import oras.client

host, workdir = sys.argv[1], sys.argv[2]
os.chdir(workdir)
client = oras.client.OrasClient(hostname=host, insecure=True)
payload = b"hello from oras\n" * 1000

for repo, chunked in (("artifacts/hello", False), ("artifacts/chunked", True)):
    with open("hello.txt", "wb") as f:
        f.write(payload)
    target = f"{host}/{repo}:v1"
    response = client.push(
        target=target,
        files=["hello.txt"],
        do_chunked=chunked,
        chunk_size=4096,
        quiet=True,
    )
    if response.status_code != 201:
        sys.exit(f"push {target}: HTTP {response.status_code} {response.text}")
    os.remove("hello.txt")
    outdir = os.path.join(workdir, "pulled-" + repo.replace("/", "-"))
    files = client.pull(target=target, outdir=outdir)
    pulled = [f for f in files if os.path.basename(f) == "hello.txt"]
    if not pulled:
        sys.exit(f"pull {target}: no hello.txt in {files}")
    with open(pulled[0], "rb") as f:
        if f.read() != payload:
            sys.exit(f"pull {target}: content differs")
    print("ok", repo)
