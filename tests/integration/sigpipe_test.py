"""The daemon outlives its stderr: with stderr on a pipe whose reader has gone, logging fails
quietly (SIGPIPE is ignored) and clients keep being served. A clean stop (SIGTERM) and a fault
stop (the model cannot load) both leave no socket and no lock file behind."""

import os
import signal
import subprocess
import time

from integration_harness import Harness, bound, check, last_json_line, wait_until


def main():
    with Harness('fault_closed_stderr_does_not_kill_daemon', timeout=120) as h:
        model = h.make_model('small')
        p = subprocess.Popen([h.args.llmqd, '--model', model, '--log-level', 'debug'], env=h.env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        h.processes.append(p)
        seen = b''
        deadline = time.monotonic() + bound(30)
        while b'serving' not in seen:
            check(time.monotonic() < deadline and p.poll() is None, f'llmqd did not serve: {seen[-2000:]}')
            seen += os.read(p.stdout.fileno(), 65536)
        p.stdout.close()  # the reader goes away; every log line now meets a closed pipe
        for i in range(3):
            r = h.llmq('generate', '--json', '--prompt', 'Hi', '--max-tokens', '2', check_rc=False, timeout=30)
            check(p.poll() is None, f'llmqd died (exit {p.returncode}) logging to a closed stderr')
            check(r.returncode == 0, f'client {i} was not served after stderr closed: {r.stderr.strip()}')
        st = h.status()
        check(st['pid'] == p.pid, 'status came from another daemon')
        h.log('served 3 clients with its stderr pipe closed, at --log-level debug')
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=bound(15))
        left = h.ipc_files()
        h.log(f'SIGTERM: exit {rc}, left in the ipc dir: {sorted(left)}')
        check(rc == 0, f'llmqd exited {rc} on SIGTERM')
        check(not left, f'a clean stop left {sorted(left)}')

        # A fault stop: the model file is not a model.
        bad = h.path('bad.gguf')
        with open(bad, 'wb') as f:
            f.write(b'not a gguf file at all')
        r = subprocess.run([h.args.llmqd, '--model', bad], env=h.env, capture_output=True, text=True,
                           timeout=bound(30))
        left = h.ipc_files()
        h.log(f'a model that cannot load: exit {r.returncode}, left: {sorted(left)}')
        check(r.returncode != 0, 'llmqd exited 0 with a model it could not load')
        check(not left, f'a fault stop left {sorted(left)}')


if __name__ == '__main__':
    main()
