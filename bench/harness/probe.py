"""Small HTTP clients for the hardening suite: one request with a chosen source address, and raw bytes on a
socket for inputs no well-behaved client would send."""

import http.client
import socket


def get(port, path="/api/hello", headers=None, source_ip=None, method="GET", body=None, timeout=10,
        host="127.0.0.1"):
    """(status, headers dict with lower-case names, body bytes)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout,
                                      source_address=(source_ip, 0) if source_ip else None)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def raw(port, data: bytes, timeout=10, read_limit=1 << 20, host="127.0.0.1"):
    """Sends `data` as is; returns the status code of the answer, or None if the server closed without one."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        try:
            conn.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        try:
            while b"\r\n" not in received and len(received) < read_limit:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    if not received.startswith(b"HTTP/1."):
        return None
    return int(received.split(b" ", 2)[1])
