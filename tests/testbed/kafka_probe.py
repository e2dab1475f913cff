#!/usr/bin/env python3
"""Minimal Kafka protocol probe (no client library): ApiVersions v0 and Metadata v1.

Usage: kafka_probe.py HOST PORT [--wait SECONDS]
Prints the broker's API count and the brokers/topics its metadata names.
Exit 0 when both requests were answered.
"""
import socket
import struct
import sys
import time


def request(sock, api_key, api_version, corr, body=b""):
    client = b"findemo-testbed-probe"
    header = struct.pack(">hhih", api_key, api_version, corr, len(client)) + client
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    data = recv_exact(sock, size)
    (got,) = struct.unpack_from(">i", data, 0)
    if got != corr:
        raise RuntimeError(f"correlation id {got} != {corr}")
    return data[4:]


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise RuntimeError("connection closed")
        buf += chunk
    return buf


class Reader:
    def __init__(self, data):
        self.d, self.o = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)
        self.o += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.d[self.o:self.o + n].decode()
        self.o += n
        return s


def probe(host, port):
    with socket.create_connection((host, port), timeout=5) as s:
        r = Reader(request(s, 18, 0, 1))
        err = r.take(">h")
        if err != 0:
            raise RuntimeError(f"ApiVersions error {err}")
        apis = r.take(">i")
        r = Reader(request(s, 3, 1, 2, struct.pack(">i", -1)))
        brokers = []
        for _ in range(r.take(">i")):
            node = r.take(">i")
            h = r.string()
            p = r.take(">i")
            r.string()  # rack
            brokers.append(f"{node}@{h}:{p}")
        r.take(">i")  # controller id
        topics = []
        for _ in range(r.take(">i")):
            r.take(">h")
            name = r.string()
            r.take(">b")
            for _ in range(r.take(">i")):
                r.take(">h"); r.take(">i"); r.take(">i")
                for _ in range(r.take(">i")):
                    r.take(">i")
                for _ in range(r.take(">i")):
                    r.take(">i")
            topics.append(name)
        return apis, brokers, topics


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    wait = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--wait" else 0
    deadline = time.monotonic() + wait
    while True:
        try:
            apis, brokers, topics = probe(host, port)
            print(f"ApiVersions: {apis} APIs; Metadata brokers: {brokers}; topics: {sorted(topics)}")
            return 0
        except Exception as e:  # noqa: BLE001 - a probe reports any failure
            if time.monotonic() >= deadline:
                print(f"kafka probe {host}:{port} failed: {e}", file=sys.stderr)
                return 1
            time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
