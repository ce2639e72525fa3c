"""Drives the nginx smoke test: REST and WebSockets through nginx, across two nodes.

A minimal RFC 6455 client on the standard library, so the check needs nothing installed.
Usage: nginx_smoke.py PID_OF_NODE_8081
"""
import base64
import json
import os
import signal
import socket
import struct
import sys
import time
import urllib.error
import urllib.request

BASE = "http://127.0.0.1:8090"


def http(method, path, body=None, token=None):
    req = urllib.request.Request(BASE + path, method=method)
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
        return r.status, (json.loads(text) if text else None)


class Ws:
    def __init__(self, path):
        self.sock = socket.create_connection(("127.0.0.1", 8090), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.buf = b""

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        n = len(data)
        if n < 126:
            header += bytes([0x80 | n])
        else:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def frame(self):
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            op = b0 & 0x0F
            if op == 0x1:
                return json.loads(payload)
            if op == 0x8:
                raise EOFError(f"closed {struct.unpack('>H', payload[:2])[0] if len(payload) >= 2 else None}")

    def expect(self, kind):
        deadline = time.time() + 10
        while time.time() < deadline:
            f = self.frame()
            if f.get("type") == kind:
                return f
        raise AssertionError(f"no {kind} frame")


def user(name):
    http("POST", "/api/users/register/", {"email": f"{name}@example.com", "username": name, "password": "password123"})
    _, body = http("POST", "/api/users/login/", {"email": f"{name}@example.com", "password": "password123"})
    return body["access"]


def too_large_is_json():
    req = urllib.request.Request(BASE + "/api/users/register/", method="POST", data=b"x" * (70 * 1024))
    req.add_header("content-type", "application/json")
    try:
        urllib.request.urlopen(req, timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 413, e.code
        assert json.loads(e.read())["code"] == "payload_too_large"
        return
    raise AssertionError("a 70 KiB body was accepted")


def main():
    node_8081 = int(sys.argv[1])
    too_large_is_json()
    alex, bob = user("alex"), user("bob")
    # nginx balances round-robin: several sockets land on both nodes.
    socks = [Ws(f"/ws/chat/general/?token={t}") for t in (alex, bob, alex, bob)]
    for s in socks:
        s.expect("ready")
    # The multi-room endpoint without its trailing slash goes through the upgrade too.
    bare = Ws(f"/ws?token={bob}")
    bare.expect("ready")
    socks.append(bare)
    socks[0].send({"type": "message", "content": "through nginx", "client_msg_id": "n-1"})
    for s in socks:
        m = s.expect("message")
        assert m["seq"] == 1 and m["content"] == "through nginx", m
    # One node dies; the service stays up and the clients resume through nginx.
    os.kill(node_8081, signal.SIGKILL)
    time.sleep(0.5)
    # A request caught on a dead node's kept-alive connection fails with 502; the client
    # retries with the same client_msg_id, which stores the message exactly once.
    body = {"content": "after the crash", "client_msg_id": "crash-1"}
    for attempt in range(5):
        try:
            status, _ = http("POST", "/api/rooms/general/messages/", body, bob)
            break
        except urllib.error.HTTPError as e:
            assert e.code == 502 and attempt < 4, e
            time.sleep(0.2)
    assert status in (200, 201), status
    resumed = Ws(f"/ws/chat/general/?token={alex}&after_seq=1")
    m = resumed.expect("message")
    assert m["seq"] == 2 and m["content"] == "after the crash", m
    resumed.expect("ready")
    status, page = http("GET", "/api/rooms/general/messages/", token=alex)
    assert [x["seq"] for x in page["messages"]] == [1, 2], page


if __name__ == "__main__":
    main()
