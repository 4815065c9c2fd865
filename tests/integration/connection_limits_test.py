"""Idle connections cannot keep a working client out, and a refusal reads as one.

300 connections from one process: 150 that never say hello (the handshake stage holds at most
[ipc] max_handshaking = 32 of them; each new one evicts the oldest) and 150 that say hello and
then do nothing (max_clients = 64 of them are served). A real client still gets its status and
its tokens: it evicts the longest-idle connection. When every slot holds a working client, a new
one is refused, and the client library says so with the daemon's reason (not "closed the
connection"). A process past [ipc] max_clients_per_pid is refused naming that key."""

import json
import socket
import time

from integration_harness import Harness, bound, check, last_json_line, read_json_line

MAX_CLIENTS = 64
MAX_HANDSHAKING = 32


def hello(sock_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall(b'{"type": "hello", "protocol": 1, "client": "idle"}\n')
    return s


def first_line(s, timeout=5):
    s.settimeout(timeout)
    data = b''
    try:
        while b'\n' not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data.split(b'\n')[0].decode(errors='replace')


def closed(s):
    s.setblocking(False)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def main():
    with Harness('fault_idle_connections_do_not_keep_clients_out', timeout=150) as h:
        model = h.make_model('small')
        daemon = h.start_daemon(model, {'ipc': {'max_clients': MAX_CLIENTS, 'max_handshaking': MAX_HANDSHAKING,
                                                'max_clients_per_pid': 1000, 'stall_timeout': '60s'}})
        sock_path = f'{h.ipc_dir}/llmq-default.sock'
        silent = []
        for _ in range(150):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock_path)
            silent.append(s)
        time.sleep(bound(0.5))
        evicted = sum(closed(s) for s in silent[:150 - MAX_HANDSHAKING])
        h.log(f'150 silent connections: the oldest {evicted} evicted')
        check(evicted == 150 - MAX_HANDSHAKING,
              f'only {evicted} of the {150 - MAX_HANDSHAKING} oldest silent connections were evicted')
        check(not any(closed(s) for s in silent[-MAX_HANDSHAKING + 1:]), 'the newest silent connections were closed')
        greeted = [hello(sock_path) for _ in range(150)]
        answers = [first_line(s) for s in greeted]
        welcomed = sum('"welcome"' in a for a in answers)
        h.log(f'then 150 greeted connections: {welcomed} welcomed; e.g. refused: '
              f'{next((a for a in answers if "refused" in a), "none")}')
        check(welcomed <= MAX_CLIENTS, f'{welcomed} idle connections were served, max_clients is {MAX_CLIENTS}')
        check(welcomed >= MAX_CLIENTS // 2, f'only {welcomed} connections were served')

        time.sleep(2.5)  # idle for longer than the eviction grace (2 s)
        t = time.monotonic()
        st = h.status()
        got = last_json_line(h.llmq('generate', '--json', '--prompt', 'Hello', '--max-tokens', '4',
                                    '--temperature', '0', timeout=30).stdout)
        took = time.monotonic() - t
        h.log(f'a real client beside 300 idle connections: status and 4 tokens in {took:.2f} s; '
              f'{st["clients"]} clients connected')
        check(got['finish_reason'] == 'length' and len(got['tokens']) == 4, f'the real client was not served: {got}')
        check(took <= bound(5), f'the real client took {took:.1f} s')
        for s in silent + greeted:
            s.close()

        # Every slot working: a new client is refused, and says why.
        daemon.stop()
        daemon = h.start_daemon(model, {'ipc': {'max_clients': 2, 'stall_timeout': '60s'}})
        workers = [h.fault_client('pause', '--phase', 'streaming', '--max-tokens', '4000') for _ in range(2)]
        for w in workers:
            check(read_json_line(w, 30) == {'ready': 'streaming'}, 'a working client did not start')
        r = h.llmq('status', '--json', check_rc=False, timeout=15)
        h.log(f'refused while 2 working clients fill max_clients = 2: exit {r.returncode}: {r.stderr.strip()}')
        check(r.returncode != 0, 'a third client was served beside max_clients = 2 working ones')
        check('refused' in r.stderr and 'max_clients' in r.stderr and 'busy' in r.stderr,
              f'the refusal does not say it is one, or why: {r.stderr.strip()}')
        check('stopped, restarted or died' not in r.stderr, f'a refusal reads as a dead daemon: {r.stderr.strip()}')
        for w in workers:
            w.kill()
            w.wait()
        h.wait_clean(daemon, timeout=2.0)
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')

        # One process past max_clients_per_pid = 3.
        daemon = h.start_daemon(model, {'ipc': {'max_clients_per_pid': 3}})
        mine = [hello(sock_path) for _ in range(4)]
        lines = [first_line(s) for s in mine]
        check(all('"welcome"' in line for line in lines[:3]), f'the first 3 of one process were not served: {lines}')
        check('refused' in lines[3] and 'max_clients_per_pid' in lines[3],
              f'the 4th connection of one process was not refused naming max_clients_per_pid: {lines[3]}')
        h.log(f'4th connection of one process: {json.loads(lines[3])["error"]["message"]}')
        for s in mine:
            s.close()
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
