#!/usr/bin/env python3
"""Measure the ingest path of a running iofd (loopback only).

  measure-ingest.py mass ADMIN_URL CATALOG.jsonl PID      # POST a mass export, report products/s and peak RSS
  measure-ingest.py latency ADMIN_URL N CLIENTS CATALOG   # ack latency of single stock updates (p50/p99)
  measure-ingest.py fresh ADMIN_URL LIGHT_URL PRODUCT     # ack -> visible in light.xml

Start the server with `iofd serve --data DIR --admin-token TOKEN ...` and export
IOFD_ADMIN_TOKEN=TOKEN for this script.
"""
import http.client
import json
import os
import re
import sys
import threading
import time
import urllib.parse

TOKEN = os.environ.get("IOFD_ADMIN_TOKEN", "demo-admin-token")


def conn(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=600)


def post(c, path, body, ctype="application/x-ndjson"):
    c.request("POST", path, body=body, headers={"Authorization": "Bearer " + TOKEN, "Content-Type": ctype})
    r = c.getresponse()
    return r.status, r.read()


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return -1


def mass(admin, catalog, pid):
    products = sum(1 for line in open(catalog, "rb") if b'"kind":"product"' in line[:40])
    size = os.path.getsize(catalog)
    c = conn(admin)

    def body():
        with open(catalog, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    return
                yield chunk

    started = time.time()
    c.putrequest("POST", "/v1/records?mode=full_sync")
    c.putheader("Authorization", "Bearer " + TOKEN)
    c.putheader("Content-Type", "application/x-ndjson")
    c.putheader("Content-Length", str(size))
    c.endheaders()
    for chunk in body():
        c.send(chunk)
    r = c.getresponse()
    answer = r.read()
    elapsed = time.time() - started
    print(f"status {r.status}: {answer[:200]!r}")
    print(f"{products} products, {size / 1e6:.1f} MB in {elapsed:.2f} s: "
          f"{products / elapsed:.0f} products/s, {size / 1e6 / elapsed:.1f} MB/s; "
          f"server peak RSS {peak_rss_mb(pid):.0f} MB")


def one_size_products(catalog, limit=5000):
    """Ids of products sent without sizes (one size): a stock update needs no size for them."""
    ids = []
    for line in open(catalog, "rb"):
        if line.startswith(b'{"kind":"product"'):
            p = json.loads(line)
            if len(p.get("sizes", [])) <= 1:
                ids.append(p["id"])
                if len(ids) >= limit:
                    break
    return ids


def latency(admin, n, clients, catalog):
    n, clients = int(n), int(clients)
    ids = one_size_products(catalog)
    base = int(time.time() * 1000) % 10**9  # fresh quantities: no update is a no-op
    lat = []
    lock = threading.Lock()
    errors = []

    def run(k):
        c = conn(admin)
        for i in range(n // clients):
            body = json.dumps({"kind": "stock", "product": ids[(k * 97 + i) % len(ids)], "warehouse": 1 + k,
                               "quantity": str(base + i)})
            t = time.perf_counter()
            status, answer = post(c, "/v1/updates", body)
            d = time.perf_counter() - t
            if status != 200:
                errors.append((status, answer[:200]))
            with lock:
                lat.append(d)

    started = time.time()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(f"{len(lat)} updates by {clients} clients in {elapsed:.1f} s ({len(lat) / elapsed:.0f}/s): "
          f"p50 {p(0.5):.1f} ms, p90 {p(0.9):.1f} ms, p99 {p(0.99):.1f} ms, max {lat[-1] * 1000:.1f} ms; "
          f"errors {len(errors)} {errors[:3]}")


def fresh(admin, light, product):
    lu = urllib.parse.urlparse(light)
    pc = conn(light)

    def etag():
        pc.request("HEAD", lu.path)
        r = pc.getresponse()
        r.read()
        assert r.status == 200, r.status
        return r.getheader("ETag")

    before = etag()
    quantity = str(int(time.time() * 1000) % 10**9)  # never the stored value: a real change
    c = conn(admin)
    t0 = time.perf_counter()
    status, answer = post(c, "/v1/updates", json.dumps(
        {"kind": "stock", "product": int(product), "warehouse": 1, "quantity": quantity}))
    acked = time.perf_counter() - t0
    assert status == 200, answer
    while etag() == before:
        time.sleep(0.005)
    visible = time.perf_counter() - t0
    pc.request("GET", lu.path)
    r = pc.getresponse()
    xml = r.read()
    start = xml.find(f'<product id="{product}"'.encode())
    end = xml.find(b"</product>", start)
    found = re.search(rb'<stock id="1" quantity="' + quantity.encode() + rb'"', xml[start:end]) is not None
    print(f"acknowledged after {acked * 1000:.1f} ms, new light.xml served after {visible * 1000:.1f} ms "
          f"({len(xml) / 1e6:.1f} MB); the update is in it: {found}")


if __name__ == "__main__":
    {"mass": mass, "latency": latency, "fresh": fresh}[sys.argv[1]](*sys.argv[2:])
