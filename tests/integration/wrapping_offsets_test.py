"""Offsets at 2^64 - 32 and lengths whose sums wrap, written into a real client region of a real
llmqd: each descriptor is refused with an invalid_request error event naming the field, the same
connection then still gets a valid request served, a request ring index 2^64 - 32 ahead closes
that connection, and the daemon keeps serving everyone."""

import json

from integration_harness import Harness, check, last_json_line


def main():
    with Harness('fault_wrapping_offsets_are_refused', timeout=120) as h:
        model = h.make_model('small')
        daemon = h.start_daemon(model)
        want = h.run_reference(model, {'prompt': 'Hello', 'max_tokens': 8, 'temperature': 0})['tokens']
        baseline = h.daemon_baseline(daemon)

        result = h.run_fault_client('wrap', timeout=60)
        check(len(result['cases']) >= 15, f'only {len(result["cases"])} cases ran: {json.dumps(result)[:2000]}')
        for case in result['cases']:
            event = case.get('event')
            check(not case['closed'], f'{case["case"]}: the daemon closed the connection instead of answering')
            check(event is not None, f'{case["case"]}: no answer within 3 s')
            check(event['kind'] == 'error' and event['code'] == 'invalid_request',
                  f'{case["case"]}: expected an invalid_request error, got {event}')
            check(case['field'] in event['text'], f'{case["case"]}: the message does not name {case["field"]}: {event["text"]}')
            check('0x7f' not in event['text'].lower() and '/tmp' not in event['text'],
                  f'{case["case"]}: the message leaks an address or path: {event["text"]}')
            h.log(f'{case["case"]}: {event["text"]}')
        after = result['valid_after']
        check(after['finals'] == 1 and after['tokens'] == 4 and not after['closed'],
              f'the connection did not serve a valid request after the refusals: {after}')
        check(result['closed_after_bad_head'], 'a ring index 2^64 - 32 ahead did not close the connection')

        check(daemon.alive(), 'llmqd died')
        got = last_json_line(h.llmq('generate', '--json', '--prompt', 'Hello', '--max-tokens', '8',
                                    '--temperature', '0').stdout)
        check(got['tokens'] == want, 'llmqd no longer serves correctly')
        h.wait_clean(daemon, timeout=1.0, baseline=baseline)
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
