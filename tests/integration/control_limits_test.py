"""Control lines 1 MiB long and JSON nested 10 000 deep, before and after the handshake, are
refused with an error reply (the long line also closes that connection); the daemon keeps
serving everyone else and its memory does not keep what it refused."""

import array
import json
import socket
import time

from integration_harness import Harness, check, last_json_line


class Raw:
    """A hand-made connection: hello, welcome (its descriptors closed at once), control lines."""

    def __init__(self, path, hello=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self.buffer = b''
        self.eof = False
        if hello:
            self.sock.sendall(b'{"type":"hello","protocol":1,"client":"control limits test"}\n')
            welcome = self.line()
            check(welcome is not None and welcome.get('type') == 'welcome', f'no welcome: {welcome}')

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def line(self, timeout=5):
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buffer:
            if self.eof or time.monotonic() > deadline:
                return None
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, 65536, 8)
            except socket.timeout:
                continue
            except ConnectionResetError:
                data, fds = b'', []
            for fd in fds:
                import os
                os.close(fd)
            if not data:
                self.eof = True
            self.buffer += data
        text, self.buffer = self.buffer.split(b'\n', 1)
        return json.loads(text)

    def closed_within(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.eof:
            self.line(timeout=max(0.0, deadline - time.monotonic()))
        return self.eof

    def close(self):
        self.sock.close()


def main():
    with Harness('fault_huge_and_deep_control_lines_are_refused', timeout=120) as h:
        model = h.make_model('small')
        daemon = h.start_daemon(model)
        path = f'{h.ipc_dir}/llmq-default.sock'
        spec = {'prompt': 'Hello', 'max_tokens': 8, 'temperature': 0}
        want = h.run_reference(model, spec)['tokens']

        def still_serves():
            got = last_json_line(h.llmq('generate', '--json', '--prompt', 'Hello', '--max-tokens', '8',
                                        '--temperature', '0').stdout)
            check(got['tokens'] == want, 'llmqd no longer serves correctly')
            check(daemon.alive(), 'llmqd died')

        huge = b'{"id":1,"command":"status","args":{"pad":"' + b'x' * (1 << 20) + b'"}}\n'
        deep = b'{"id":2,"command":"status","args":' + b'[' * 10000 + b']' * 10000 + b'}\n'
        deep_object = b'{"id":3,"command":"status","args":' + b'{"a":' * 10000 + b'1' + b'}' * 10000 + b'}\n'

        # After the handshake: a bystander connection is open throughout and must keep working.
        bystander = Raw(path)
        for name, line, closes in (('1 MiB line', huge, True), ('10 000 nested arrays', deep, False),
                                   ('10 000 nested objects', deep_object, False)):
            c = Raw(path)
            c.send(line)
            reply = c.line()
            check(reply is not None and reply.get('ok') is False, f'{name}: expected an error reply, got {reply}')
            message = reply['error']['message']
            check(len(message) < 1000, f'{name}: the error message is {len(message)} bytes long')
            h.log(f'{name}: {reply["error"]["code"]}: {message}')
            if closes:
                check(c.closed_within(2), f'{name}: the connection stayed open')
            else:
                # The connection survives a refused line and still answers.
                c.send(b'{"id":9,"command":"ping","args":{}}\n')
                pong = c.line()
                check(pong is not None and pong.get('ok') is True, f'{name}: no answer after the refusal: {pong}')
            c.close()
            still_serves()

        # Before the handshake: the hello itself too long or too deep.
        for name, line in (('1 MiB hello', b'{"type":"hello","protocol":1,"client":"' + b'x' * (1 << 20) + b'"}\n'),
                           ('deep hello', b'{"type":"hello","protocol":1,"client":' + b'[' * 10000 + b']' * 10000 + b'}\n')):
            c = Raw(path, hello=False)
            c.send(line)
            reply = c.line()
            check(reply is not None and reply.get('type') == 'refused', f'{name}: expected a refusal, got {reply}')
            check(c.closed_within(2), f'{name}: the connection stayed open')
            c.close()
            still_serves()

        # Many of them in a row do not grow the daemon without bound.
        def rss_kib():
            with open(f'/proc/{daemon.pid}/status') as f:
                return next(int(l.split()[1]) for l in f if l.startswith('VmRSS:'))
        start_rss = rss_kib()
        for _ in range(20):
            c = Raw(path)
            c.send(huge)
            c.line()
            c.close()
        grown = rss_kib() - start_rss
        check(grown < 64 * 1024, f'llmqd grew by {grown} KiB after 20 refused 1 MiB lines')

        bystander.send(b'{"id":5,"command":"status","args":{}}\n')
        reply = bystander.line()
        check(reply is not None and reply.get('ok') is True, f'the bystander connection broke: {reply}')
        bystander.close()
        still_serves()
        h.wait_clean(daemon, timeout=1.0)
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
