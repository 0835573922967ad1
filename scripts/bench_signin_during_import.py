#!/usr/bin/env python3
"""Sign-in latency while a large import runs, over HTTP.

  scripts/bench_signin_during_import.py ARCHIVE [N]

Starts `target/release/postern localserve` on 127.5.5.5 in a scratch
directory, measures N sequential sign-ins (LoginPrep + Login, which writes the
new session durably to accounts.redb) of the demo account alone, then again
while ARCHIVE is uploaded and imported into the same account, and prints
p50/p99 of both. Sign-ins and the import share the machine's CPUs; the point is
that sign-ins never wait for the import's database writer.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HOST, PORT = "127.5.5.5", 1080


def call(conn, path, params, cookies, csrf=None):
    h = {"content-type": "application/json"}
    if cookies:
        h["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    if csrf:
        h["x-mox-csrf"] = csrf
    conn.request("POST", path, json.dumps({"params": params}), h)
    r = conn.getresponse()
    body = r.read()
    for sc in r.headers.get_all("set-cookie") or []:
        k, v = sc.split(";", 1)[0].split("=", 1)
        cookies[k] = v
    return json.loads(body)


def signin():
    conn = http.client.HTTPConnection(HOST, PORT)
    cookies = {}
    t = time.perf_counter()
    tok = call(conn, "/account/api/LoginPrep", [], cookies)["result"]
    res = call(conn, "/account/api/Login", [tok, "demo@localhost", "demodemo"], cookies)
    dt = time.perf_counter() - t
    assert "result" in res, res
    conn.close()
    return dt, cookies, res["result"]


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))] * 1000


def main():
    archive, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100
    d = tempfile.mkdtemp()
    srv = subprocess.Popen(["target/release/postern", "localserve", "--dir", d, "--ip", HOST],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in srv.stdout:
            if "stop with" in line:
                break
        base = [signin()[0] for _ in range(n)]
        _, cookies, csrf = signin()
        # Upload in a thread; sign in meanwhile until the import is done.
        done = threading.Event()
        def importer():
            boundary = uuid.uuid4().hex
            size = os.path.getsize(archive)
            head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.tgz\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n").encode()
            tail = f"\r\n--{boundary}--\r\n".encode()
            conn = http.client.HTTPConnection(HOST, PORT, timeout=600)
            conn.putrequest("POST", "/account/import")
            conn.putheader("content-type", f"multipart/form-data; boundary={boundary}")
            conn.putheader("content-length", str(len(head) + size + len(tail)))
            conn.putheader("cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))
            conn.putheader("x-mox-csrf", csrf)
            conn.endheaders()
            conn.send(head)
            with open(archive, "rb") as f:
                while chunk := f.read(1 << 20):
                    conn.send(chunk)
            conn.send(tail)
            token = json.loads(conn.getresponse().read())["Token"]
            p = http.client.HTTPConnection(HOST, PORT, timeout=600)
            p.request("GET", f"/account/importprogress?token={token}")
            text = p.getresponse().read().decode()
            print("import ended with:", re.findall(r"event: (done|aborted)", text))
            done.set()
        t = threading.Thread(target=importer)
        t0 = time.perf_counter()
        t.start()
        during = []
        while not done.is_set():
            during.append(signin()[0])
        t.join()
        print(f"import (upload + import) took {time.perf_counter() - t0:.1f} s")
        print(f"sign-in alone:         n={len(base)} p50={pct(base, 50):.1f} ms p99={pct(base, 99):.1f} ms")
        print(f"sign-in during import: n={len(during)} p50={pct(during, 50):.1f} ms p99={pct(during, 99):.1f} ms")
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(timeout=60)


if __name__ == "__main__":
    main()
