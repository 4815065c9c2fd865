"""SIGTERM drains: during the load the daemon stops cleanly right after it (exit 0); with requests
running they finish before the daemon exits 0, while new requests on open connections get
"shutting down" and new connections are not left hanging; past [ipc] drain_timeout the
remaining requests are cancelled and the daemon still exits 0."""

import os
import signal
import time

from integration_harness import Harness, bound, check, collect, last_json_line, read_json_line


def wait_for_log(daemon, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in daemon.log():
            return True
        if not daemon.alive():
            return False
        time.sleep(0.0005)
    return False


def main():
    with Harness('integration_sigterm_drains_and_exits_zero', timeout=170) as h:
        model = h.make_model('medium', dim=256, layers=4, heads=4, kv_heads=2, ffn=512)

        # ---- SIGTERM while the model loads: the signal handler is in place once the instance
        # line is logged, before the load begins.
        during_load = 0
        for attempt in range(5):
            daemon = h.start_daemon(model, wait=False)
            check(wait_for_log(daemon, 'instance "default" at'), f'llmqd never opened its instance:\n{daemon.log()}')
            daemon.signal(signal.SIGTERM)
            rc = daemon.wait(timeout=15)
            check(rc == 0, f'SIGTERM during the load: llmqd exited {rc}:\n{daemon.log()}')
            during_load += 'arrived during the load' in daemon.log()
            check(not os.path.exists(os.path.join(h.ipc_dir, 'llmq-default.sock')),
                  'the socket stayed after a stop during the load')
        h.log(f'SIGTERM at the instance line: 5 clean exits, {during_load} of them during the load')

        # ---- SIGTERM with requests running: they finish, the daemon exits 0.
        daemon = h.start_daemon(model)
        specs = [{'prompt': f'Story number {i}:', 'max_tokens': 500, 'temperature': 0.8, 'seed': 100 + i,
                  'ignore_eos': True} for i in range(4)]
        expected = [h.run_reference(model, s)['tokens'] for s in specs]
        late = h.fault_client('late', '--max-tokens', '4', stdin=__import__('subprocess').PIPE)
        check(read_json_line(late, 10) == {'ready': 'late'}, 'the late client did not connect')
        running = [h.start_generate(s) for s in specs]
        for p in running:
            check(read_json_line(p, 20) is not None, 'a client got no first token')
        daemon.signal(signal.SIGTERM)
        check(wait_for_log(daemon, 'draining (SIGTERM)', 5), 'llmqd did not start draining')

        # A new request on an open connection: "shutting down" at once.
        late.stdin.write('go\n')
        late.stdin.flush()
        answer = read_json_line(late, 5)
        check(answer is not None and answer.get('kind') == 'error' and answer.get('code') == 'shutting_down',
              f'a request during the drain got {answer}')
        check('shutting down' in answer['text'], f'the refusal does not say why: {answer["text"]}')
        h.log(f'request during the drain: {answer["code"]}: {answer["text"]}')

        # A new client during the drain hears "shutting down" at once too; it does not hang in
        # the listen backlog until the daemon is gone.
        started = time.monotonic()
        newcomer = h.llmq('generate', '--prompt', 'Hi', '--max-tokens', '4', check_rc=False, timeout=30)
        waited = time.monotonic() - started
        h.log(f'a new client during the drain: exit {newcomer.returncode} after {waited:.2f} s: {newcomer.stderr.strip()}')
        check(newcomer.returncode != 0, 'a new client was served during the drain')
        check('shutting down' in newcomer.stderr and waited < bound(1.0),
              f'a new client during the drain got "{newcomer.stderr.strip()}" after {waited:.2f} s')
        check(any(p.poll() is None for p in running), 'the drain ended before the new client came; lengthen the requests')

        for i, p in enumerate(running):
            rc, out, err = collect(p, timeout=60)
            check(rc == 0, f'running client {i} exited {rc} during the drain: {err.strip()}')
            final = last_json_line(out)
            check(final['finish_reason'] == 'length' and final['tokens'] == expected[i],
                  f'running client {i} did not finish its request: {final.get("finish_reason")}, '
                  f'{len(final.get("tokens", []))} tokens')
        rc = daemon.wait(timeout=15)
        check(rc == 0, f'llmqd exited {rc} after the drain:\n{daemon.log()[-2000:]}')
        collect(late, timeout=10)

        # ---- Past the drain timeout the rest is cancelled; the exit is still 0 and prompt.
        daemon = h.start_daemon(model, {'ipc': {'drain_timeout': '300ms'}})
        endless = h.start_generate({'prompt': 'Forever', 'max_tokens': 4000, 'temperature': 0, 'ignore_eos': True})
        check(read_json_line(endless, 20) is not None, 'the long client got no first token')
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        rc = daemon.wait(timeout=15)
        took = time.monotonic() - started
        check(rc == 0, f'llmqd exited {rc} after the drain timeout:\n{daemon.log()[-2000:]}')
        check(took < bound(3), f'llmqd took {took:.1f} s to stop with a 300 ms drain timeout')
        rc, out, err = collect(endless, timeout=10)
        final = last_json_line(out)
        check(final['finish_reason'] in ('cancelled', 'error') or rc != 0,
              f'the long request did not end early: {final.get("finish_reason")}')
        h.log(f'drain timeout: stopped in {took:.2f} s; the long client ended with {final["finish_reason"]} (exit {rc})')


if __name__ == '__main__':
    main()
