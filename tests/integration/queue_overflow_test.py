"""Queue overflow answers "busy" at once: with [scheduler] max_queued_requests = 4 and two running
sequences, a client that submits 40 requests back to back gets a busy error event within
milliseconds for each one that does not fit, the accepted ones run to their end, and a client
that comes afterwards is served normally."""

from integration_harness import Harness, bound, check, last_json_line

MAX_QUEUED = 4
MAX_RUNNING = 2
FLOOD = 40


def main():
    with Harness('integration_queue_overflow_answers_busy', timeout=120) as h:
        model = h.make_model('small')
        daemon = h.start_daemon(model, {'scheduler': {'max_queued_requests': MAX_QUEUED,
                                                      'max_running_sequences': MAX_RUNNING}})
        result = h.run_fault_client('flood', '--count', str(FLOOD), '--max-tokens', '48', '--ignore-eos', 'true',
                                    timeout=60)
        check(result['refused_locally'] == 0, f'the client library refused {result["refused_locally"]} submits')
        check(len(result['results']) == FLOOD, f'{len(result["results"])} of {FLOOD} requests ended')
        busy = [r for r in result['results'] if r['kind'] == 'error' and r['code'] == 'busy']
        finished = [r for r in result['results'] if r['kind'] == 'final']
        other = [r for r in result['results'] if r not in busy and r not in finished]
        check(not other, f'unexpected outcomes: {other[:3]}')
        h.log(f'{len(finished)} accepted, {len(busy)} busy; slowest busy answer {max(r["ms"] for r in busy):.1f} ms; '
              f'message: {busy[0]["text"] if busy else ""}')
        # The daemon may start two between submits; everything beyond queue + running + a few is busy.
        check(len(finished) >= MAX_QUEUED, f'only {len(finished)} requests were accepted')
        check(len(finished) <= MAX_QUEUED + MAX_RUNNING + 4, f'{len(finished)} requests were accepted, the queue holds {MAX_QUEUED}')
        check(all('busy' in r['text'] and 'max_queued_requests' in r['text'] for r in busy),
              f'a busy message does not say why: {busy[0]["text"]}')
        slow = [r for r in busy if r['ms'] > bound(0.25) * 1000]
        check(not slow, f'busy answers were not immediate: {[round(r["ms"]) for r in slow]} ms')
        check(all(r['finish'] == 'length' and r['generated'] == 48 for r in finished),
              f'an accepted request did not run to its end: {finished}')

        got = last_json_line(h.llmq('generate', '--json', '--prompt', 'Hello', '--max-tokens', '8',
                                    '--temperature', '0').stdout)
        check(got['finish_reason'] == 'length' and len(got['tokens']) == 8, f'a later client was not served: {got}')
        h.wait_clean(daemon, timeout=1.0)
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
