#!/usr/bin/env python3
"""Instructions per request, counted by callgrind (docs/performance.md).

Runs the release server under `valgrind --tool=callgrind` on one CPU (so one
tokio worker), signs in once, then sends N floor requests (GET of the
account page) and N session checks (POST api/Version with cookie and CSRF
header), each request written in one piece on one keep-alive connection,
and reads the instructions the server executed for each batch. Unlike
requests per second, the count hardly depends on the machine or on what
else runs on it, so it shows what a change to the request path costs.

Caveat: under valgrind, SHA-256 runs in software (valgrind does not offer
the SHA extensions), about 3,500 instructions per hash; a session check
hashes two tokens (with SHA-NI each takes a few hundred). The figure
printed "without SHA-256 rounds" leaves out what callgrind counted in sha2's
compress function.

Usage: scripts/instructions.sh [N]   (default 2000)
       KEEP=DIR scripts/instructions.sh   also keeps each batch's callgrind
       file as DIR/cg.floor.out and DIR/cg.check.out (callgrind_annotate)
"""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("POSTERN_BIN", "target/release/postern")
PORT = 1080


def wait_ready(log_path, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(log_path) as f:
                if "stop with" in f.read():
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.5)
    sys.exit("server did not start under valgrind")


def sign_in():
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
    h = {"content-type": "application/json"}
    c.request("POST", "/account/api/LoginPrep", body=b'{"params":[]}', headers=h)
    r = c.getresponse()
    token = json.loads(r.read())["result"]
    login_cookie = r.getheader("set-cookie").split(";")[0]
    body = json.dumps({"params": [token, "demo@localhost", "demodemo"]}).encode()
    c.request("POST", "/account/api/Login", body=body, headers={**h, "cookie": login_cookie})
    r = c.getresponse()
    csrf = json.loads(r.read())["result"]
    assert r.status == 200, "sign-in failed"
    return r.getheader("set-cookie").split(";")[0], csrf


def requests(kind, n, session):
    if kind == "floor":
        req = b"GET /account/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    else:
        cookie, csrf = session
        body = b'{"params":[]}'
        req = (
            "POST /account/api/Version HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nx-mox-csrf: %s\r\nCookie: %s\r\n"
            "Content-Length: %d\r\n\r\n" % (csrf, cookie, len(body))
        ).encode() + body
    s = socket.create_connection(("127.0.0.1", PORT))
    buf = b""
    for _ in range(n):
        s.sendall(req)
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                head = buf[:end].decode()
                assert head.startswith("HTTP/1.1 200"), head
                length = int(re.search(r"(?i)content-length: *(\d+)", head).group(1))
                if len(buf) >= end + 4 + length:
                    buf = buf[end + 4 + length :]
                    break
            data = s.recv(65536)
            assert data, "connection closed"
            buf += data
    s.close()


def totals(path):
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", path],
        capture_output=True, text=True, check=True,
    ).stdout
    total = int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", out).group(1).replace(",", ""))
    sha = sum(
        int(m.group(1).replace(",", ""))
        for m in re.finditer(r"^\s*([\d,]+) \([ \d.]+%\)\s+\S*:sha2::sha256::compress256", out, re.M)
    )
    return total, sha


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: install valgrind")
    work = tempfile.mkdtemp(prefix="postern-instr-")
    log = os.path.join(work, "log")
    out = os.path.join(work, "callgrind.out")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           BIN, "localserve", "--dir", os.path.join(work, "l"), "--ip", "127.0.0.1"]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0"] + cmd
    with open(log, "w") as lf:
        server = subprocess.Popen(cmd, stdout=lf, stderr=lf, env={**os.environ, "RUST_LOG": "error"})
    try:
        wait_ready(log)
        session = sign_in()
        results = {}
        for kind in ("floor", "check"):
            requests(kind, 200, session)  # warm up
            subprocess.run(["callgrind_control", "-z", str(server.pid)], capture_output=True, check=True)
            requests(kind, n, session)
            subprocess.run(["callgrind_control", "-d", kind, str(server.pid)], capture_output=True, check=True)
            time.sleep(1)
            dumps = sorted(f for f in os.listdir(work) if f.startswith("callgrind.out."))
            results[kind] = totals(os.path.join(work, dumps[-1]))
            if os.environ.get("KEEP"):
                shutil.copy(os.path.join(work, dumps[-1]), os.path.join(os.environ["KEEP"], f"cg.{kind}.out"))
        floor, check = results["floor"][0] / n, results["check"][0] / n
        check_hw = (results["check"][0] - results["check"][1]) / n
        print(f"instructions per request ({n} requests each, callgrind):")
        print(f"  floor (GET page)                     {floor:6.0f}")
        print(f"  session check                        {check:6.0f}")
        print(f"  session check without SHA-256 rounds {check_hw:6.0f}   (floor / check {floor / check_hw:.2f})")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
