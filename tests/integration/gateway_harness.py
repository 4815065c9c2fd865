"""llmq-gateway in front of a real llmqd, for the gateway tests (gateway_test.py and the SDK test).

start_gateway() starts llmq-gateway on a free port (--port 0; the port is read from its first
line) against the harness's daemon; request() sends one HTTP request over a fresh socket and
returns (status, headers, body bytes) without any client library in the way.
"""

import json
import socket
import subprocess
import time

from integration_harness import TestFailure, bound, check


class Gateway:
    def __init__(self, process, port):
        self.process = process
        self.port = port

    def url(self, path=''):
        return f'http://127.0.0.1:{self.port}{path}'


def start_gateway(h, gateway_exe, *flags, config=None):
    args = [gateway_exe, '--port', '0', *flags]
    if config is not None:
        path = h.path(f'gateway-{len(h.processes)}.toml')
        with open(path, 'w') as f:
            f.write(config)
        args += ['--config', path]
    p = h.spawn(args)
    line = p.stdout.readline()
    check('listening on http://' in line, lambda: f'llmq-gateway did not start: {line!r} {p.stderr.read()}')
    port = int(line.split('http://', 1)[1].split()[0].rsplit(':', 1)[1])
    return Gateway(p, port)


def request(gw, method, path, body=None, headers=None, timeout=30):
    """One HTTP/1.1 request with Connection: close; returns (status, headers dict, body bytes)."""
    data = b''
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    lines = [f'{method} {path} HTTP/1.1', f'Host: 127.0.0.1:{gw.port}', 'Connection: close',
             f'Content-Length: {len(data)}']
    if body is not None:
        lines.append('Content-Type: application/json')
    for k, v in (headers or {}).items():
        lines.append(f'{k}: {v}')
    raw = ('\r\n'.join(lines) + '\r\n\r\n').encode() + data
    with socket.create_connection(('127.0.0.1', gw.port), timeout=bound(timeout)) as s:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the body was read: the answer is still there to read
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return parse_response(b''.join(chunks))


def parse_response(raw):
    head, _, body = raw.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    check(lines and lines[0].startswith('HTTP/1.1 '), lambda: f'not an HTTP response: {raw[:200]!r}')
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        headers[k.strip().lower()] = v.strip()
    if headers.get('transfer-encoding') == 'chunked':
        body = dechunk(body)
    return status, headers, body


def dechunk(body):
    out = b''
    while body:
        size_line, _, rest = body.partition(b'\r\n')
        size = int(size_line.split(b';')[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def metrics(gw):
    status, _, body = request(gw, 'GET', '/metrics')
    check(status == 200, f'/metrics answered {status}')
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith('#'):
            name, _, value = line.rpartition(' ')
            values[name] = float(value)
    return body.decode(), values


def wait_daemon_idle(h, daemon, timeout=5):
    """Until llmqd runs no request and holds no KV block (the gateway's own connection may stay)."""
    deadline = time.monotonic() + bound(timeout)
    while True:
        st = h.status(daemon.instance)
        if st['requests']['running'] == 0 and st['requests']['queued'] == 0 and st['kv_blocks']['used'] == 0:
            return st
        if time.monotonic() > deadline:
            raise TestFailure(f'llmqd still busy after {timeout} s: {st["requests"]}, {st["kv_blocks"]}')
        time.sleep(0.02)
