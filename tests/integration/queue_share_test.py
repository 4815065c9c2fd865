"""One connection cannot hoard the queue or the sequence slots: past [ipc]
max_requests_per_client its requests are answered "busy" naming the key, and it runs at most
[ipc] max_running_per_client sequences at once while its others wait, so another client's
request starts at once beside it."""

import time

from integration_harness import Harness, bound, check, last_json_line, read_json_line

SHARE = 4
RUNNING = 2


def main():
    with Harness('integration_one_client_gets_its_share', timeout=150) as h:
        model = h.make_model('small')
        daemon = h.start_daemon(model, {'ipc': {'max_requests_per_client': SHARE, 'max_running_per_client': RUNNING},
                                        'scheduler': {'max_running_sequences': 8, 'max_queued_requests': 64}})
        flood = h.fault_client('flood', '--count', '20', '--max-tokens', '400', '--ignore-eos', 'true')
        # While its accepted requests run, it holds at most RUNNING slots.
        most_running = 0
        deadline = time.monotonic() + bound(10)
        seen_waiting = False
        while time.monotonic() < deadline:
            st = h.status()
            most_running = max(most_running, st['requests']['running'])
            seen_waiting = seen_waiting or (st['requests']['running'] == RUNNING and st['requests']['queued'] >= 1)
            if seen_waiting:
                break
            time.sleep(0.01)
        check(most_running <= RUNNING, f'one client ran {most_running} sequences, its share is {RUNNING}')
        check(seen_waiting, 'the flooding client never had requests waiting beside its running share')
        # Another client runs at once beside it.
        t = time.monotonic()
        got = last_json_line(h.llmq('generate', '--json', '--prompt', 'Hi', '--max-tokens', '4',
                                    '--temperature', '0', timeout=30).stdout)
        took = time.monotonic() - t
        check(got['finish_reason'] == 'length', f'another client was not served: {got}')
        queued_ms = got.get('timings', {}).get('queue_ms', 0)
        check(queued_ms <= bound(1.0) * 1000, f'another client waited {queued_ms:.0f} ms for a sequence slot')
        h.log(f'another client served in {took:.2f} s beside the flood (queue ms {got.get("timings", {}).get("queue_ms")})')
        result = last_json_line(flood.communicate(timeout=120)[0])
        busy = [r for r in result['results'] if r['kind'] == 'error' and r['code'] == 'busy']
        finished = [r for r in result['results'] if r['kind'] == 'final']
        h.log(f'flood of 20: {len(finished)} accepted, {len(busy)} busy: {busy[0]["text"] if busy else ""}')
        check(len(finished) <= SHARE + 2, f"{len(finished)} of one client's requests were accepted, its share is {SHARE}")
        check(len(finished) >= SHARE, f'only {len(finished)} requests were accepted')
        check(busy and all('max_requests_per_client' in r['text'] for r in busy),
              f'the busy answers do not name the key: {busy[:1]}')
        h.wait_clean(daemon, timeout=1.0)
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
