#!/usr/bin/env python3
"""Regenerate src/server/command_docs.resp from a running redis-server 7 (`COMMAND DOCS`).

Usage: python3 tools/gen_command_docs.py PORT > src/server/command_docs.resp

The file is the server's RESP3 `COMMAND DOCS` reply, unchanged except for order: commands
and each command's subcommands are sorted by name (Redis lists them in hash-table order,
which changes with every start). The bundled server answers COMMAND DOCS from it, listing
only the commands and subcommands it implements, so summaries, groups, complexities,
arguments, history and doc flags are Redis' own, byte for byte, in RESP2 and RESP3.
"""
import socket
import sys


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.pos = 0

    def _fill(self):
        data = self.sock.recv(1 << 16)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def line(self):
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                out = self.buf[self.pos:end]
                self.pos = end + 2
                return out
            self._fill()

    def exact(self, n):
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        out = self.buf[self.pos:self.pos + n]
        self.pos += n + 2
        return out

    def value(self):
        """A frame as (type byte, payload): children for aggregates, bytes otherwise."""
        head = self.line()
        kind, rest = head[:1], head[1:]
        if kind in (b"$", b"=", b"!"):
            return (kind, self.exact(int(rest)))
        if kind in (b"*", b"~", b">"):
            return (kind, [self.value() for _ in range(int(rest))])
        if kind == b"%":
            return (kind, [(self.value(), self.value()) for _ in range(int(rest))])
        return (kind, rest)


def encode(v):
    kind, payload = v
    if kind in (b"$", b"=", b"!"):
        return kind + b"%d\r\n" % len(payload) + payload + b"\r\n"
    if kind in (b"*", b"~", b">"):
        return kind + b"%d\r\n" % len(payload) + b"".join(encode(x) for x in payload)
    if kind == b"%":
        return kind + b"%d\r\n" % len(payload) + b"".join(
            encode(k) + encode(x) for k, x in payload)
    return kind + payload + b"\r\n"


def sorted_docs(docs):
    """One command's docs map, its `subcommands` map sorted by name (recursively)."""
    kind, pairs = docs
    out = []
    for k, v in pairs:
        if k == (b"$", b"subcommands"):
            v = (v[0], sorted(((n, sorted_docs(d)) for n, d in v[1]),
                              key=lambda p: p[0][1]))
        out.append((k, v))
    return (kind, out)


def main():
    port = int(sys.argv[1])
    sock = socket.create_connection(("127.0.0.1", port))
    r = Reader(sock)
    sock.sendall(b"HELLO 3\r\n")
    r.value()
    sock.sendall(b"COMMAND DOCS\r\n")
    kind, pairs = r.value()
    assert kind == b"%", "COMMAND DOCS should answer a map under RESP3"
    pairs = sorted(((n, sorted_docs(d)) for n, d in pairs), key=lambda p: p[0][1])
    sys.stdout.buffer.write(encode((kind, pairs)))


if __name__ == "__main__":
    main()
