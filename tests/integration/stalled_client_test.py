"""A client that never reads its stream does not slow the others, and is cut off after
[ipc] stall_timeout (3 s here): its request ends with a "stalled" error and its KV blocks are
freed while its connection stays. A client that does read is never mistaken for a stalled one,
however much longer its stream is than the response ring (64 slots here)."""

import time

from integration_harness import Harness, bound, check, collect, last_json_line, read_json_line, request_args

STALL_TIMEOUT_S = bound(3.0)
RING_SLOTS = 64
WORKLOAD = [{'prompt': f'Bystander {i} writes', 'max_tokens': 200, 'temperature': 0.8, 'seed': 40 + i,
             'ignore_eos': True} for i in range(4)]


def main():
    with Harness('fault_stalled_client_is_cut_off_without_slowing_others', timeout=170) as h:
        model = h.make_model('medium', dim=128, layers=4, heads=4, kv_heads=2, ffn=384)
        expected = [h.run_reference(model, s)['tokens'] for s in WORKLOAD]
        daemon = h.start_daemon(model, {'ipc': {'stall_timeout': f'{int(STALL_TIMEOUT_S * 1000)}ms',
                                                'response_ring_slots': RING_SLOTS}})

        # A reading client with a stream 20 times the ring runs to its end.
        long_stream = {'prompt': 'A long story', 'max_tokens': 20 * RING_SLOTS, 'temperature': 0, 'ignore_eos': True}
        got = last_json_line(h.llmq('generate', '--json', *request_args(long_stream),
                                    check_rc=False, timeout=120).stdout)
        check(got['finish_reason'] == 'length' and len(got['tokens']) == 20 * RING_SLOTS,
              f'a client that reads was cut off after {len(got["tokens"])} of {20 * RING_SLOTS} tokens: '
              f'{got.get("error_code")}: {got.get("error")}')

        def workload():
            started = time.monotonic()
            clients = [h.start_generate(s) for s in WORKLOAD]
            for i, p in enumerate(clients):
                rc, out, err = collect(p, timeout=60)
                check(rc == 0, f'bystander {i} exited {rc}: {err.strip()}')
                check(last_json_line(out)['tokens'] == expected[i], f'bystander {i} got other tokens')
            return time.monotonic() - started

        alone = min(workload() for _ in range(2))

        stalled = h.fault_client('stall', '--max-tokens', '4000', '--sleep-ms', str(int(STALL_TIMEOUT_S * 1000 + 1500)))
        check(read_json_line(stalled, 10) == {'ready': 'stall'}, 'the stalling client did not start')
        ready_at = time.monotonic()
        # Twice (the best counts, as for `alone`), both while the client is stalled.
        beside = min(workload() for _ in range(2))
        check(time.monotonic() - ready_at < STALL_TIMEOUT_S, 'the bystanders took longer than the stall timeout; shorten them')
        h.log(f'bystanders alone {alone:.2f} s, beside a stalled client {beside:.2f} s')
        # Generous: the machine is shared; a client that blocked the engine would add the whole
        # stall timeout.
        check(beside <= 3 * alone + bound(0.5), f'a stalled client slowed the others from {alone:.2f} s to {beside:.2f} s')

        # Cut off after the stall timeout: its request is gone while its connection stays.
        def cut_off():
            st = h.status()
            mine = [c for c in st['client_list'] if c['name'] == 'fault stall']
            check(mine, 'the stalled client was disconnected instead of having its request cancelled')
            return mine[0]['requests'] == 0 and st['kv_blocks']['used'] == 0
        deadline = ready_at + STALL_TIMEOUT_S + bound(2.0)
        while not cut_off():
            check(time.monotonic() < deadline, f'the stalled request still runs {time.monotonic() - ready_at:.1f} s later')
            time.sleep(0.02)
        took = time.monotonic() - ready_at
        check(took >= STALL_TIMEOUT_S * 0.9, f'the request was cut off after {took:.2f} s, before the stall timeout')
        h.log(f'the stalled request was cancelled {took:.2f} s after it started (stall_timeout {STALL_TIMEOUT_S} s)')

        end = read_json_line(stalled, 15)
        check(end is not None and end.get('kind') == 'error' and end.get('code') == 'stalled',
              f'the stalled client read {end} at the end instead of a stalled error')
        check(end['tokens_read'] <= RING_SLOTS, f'the stalled client read {end["tokens_read"]} tokens, more than the ring holds')
        h.log(f'the stalled client then read {end["tokens_read"]} tokens and: {end["text"]}')
        collect(stalled, timeout=10)
        h.wait_clean(daemon, timeout=1.0)
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
