#!/usr/bin/env python3
"""tests/lightnet.py: the Spartan and Nex clients of the tests, over real sockets.

  lightnet.py send PORT BYTES          BYTES (Python escapes: \\r \\n \\xHH) sent,
                                       then the client's end of stream; the
                                       reply (to the server's close) to stdout
  lightnet.py spartan PORT PATH [DATA] one Spartan request for localhost
  lightnet.py nex PORT PATH            one Nex request
  lightnet.py crawl-spartan PORT       every page reachable from "/" by its links
  lightnet.py crawl-nex PORT           the same over Nex (directories' "=> " lines)

A crawl prints "page PATH" for each page reached, "pages N" and each failure as "FAIL: ..." (exit 1 when any).
"""
import socket
import sys
from urllib.parse import urlsplit, unquote_to_bytes

HOST = "127.0.0.1"


def exchange(port, data, timeout=10, close_write=False):
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        out = bytearray()
        while True:
            b = s.recv(65536)
            if not b:
                return bytes(out)
            out += b


def spartan(port, path, data=b""):
    return exchange(port, b"localhost %s %d\r\n" % (path.encode(), len(data)) + data)


def nex(port, path):
    return exchange(port, path.encode() + b"\n")


def local_target(base, url, scheme, port):
    """The path of a link to this site over scheme, or None."""
    if url.startswith("/"):
        return url
    u = urlsplit(url)
    if u.scheme != scheme or u.hostname != "localhost" or (u.port or 0) != port:
        return None
    return (u.path or "/") + ("?" + u.query if u.query else "")


def crawl(port, proto):
    seen, todo, fails = set(), ["/"], []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if proto == "spartan":
            r = spartan(port, path)
            head, _, body = r.partition(b"\r\n")
            if not head.startswith(b"2 "):
                fails.append("%s: %r" % (path, head[:80]))
                continue
            if not head.startswith(b"2 text/gemini"):
                continue
            prefixes = (b"=> ",)
        else:
            body = nex(port, path)
            if body.startswith(b"Not found"):
                fails.append("%s: not found" % path)
                continue
            if not path.endswith("/"):
                continue
            prefixes = (b"=> ",)
        for line in body.split(b"\n"):
            if not line.startswith(prefixes):
                continue
            parts = line[3:].decode("utf-8").split(None, 1)
            if not parts:
                continue
            t = local_target(path, parts[0], proto, port)
            if t is not None and t not in seen:
                todo.append(t)
    for p in sorted(seen):
        print("page", p)
    print("pages", len(seen))
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


def main(argv):
    cmd, port = argv[1], int(argv[2])
    out = sys.stdout.buffer
    if cmd == "send":
        data = argv[3].encode("latin-1").decode("unicode_escape").encode("latin-1")
        out.write(exchange(port, data, close_write=True))
    elif cmd == "spartan":
        data = argv[4].encode() if len(argv) > 4 else b""
        out.write(spartan(port, argv[3], data))
    elif cmd == "nex":
        out.write(nex(port, argv[3]))
    elif cmd in ("crawl-spartan", "crawl-nex"):
        return crawl(port, cmd[6:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
