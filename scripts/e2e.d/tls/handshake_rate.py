#!/usr/bin/env python3
"""SIP over TLS connection rate of a running siphon, from one client in turn:
each connection is a TLS handshake, an OPTIONS and its 200, and a close.

    handshake_rate.py HOST PORT CA_PEM COUNT

Prints the rate and the p50/p99 time per connection."""
import socket
import ssl
import sys
import time

OPTIONS = (
    "OPTIONS sip:siphon@{host} SIP/2.0\r\nVia: SIP/2.0/TLS {host}:5099;branch=z9hG4bK-{i}\r\n"
    "From: <sip:probe@{host}>;tag=a\r\nTo: <sip:siphon@{host}>\r\nCall-ID: rate{i}\r\n"
    "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


def main(host, port, ca, n):
    ctx = ssl.create_default_context(cafile=ca)
    answered, times = 0, []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        with socket.create_connection((host, port)) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                s.sendall(OPTIONS.format(host=host, i=i).encode())
                answered += s.recv(4096).startswith(b"SIP/2.0 200")
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    times.sort()
    print(f"{n} connections (TLS handshake, OPTIONS, 200) in {total:.2f} s: {n / total:.0f}/s, "
          f"{answered} answered 200, p50 {times[n // 2] * 1e3:.1f} ms, "
          f"p99 {times[int(n * 0.99)] * 1e3:.1f} ms")
    return 0 if answered == n else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
