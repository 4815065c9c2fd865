"""A second live request with a request id already in use on the connection is refused with an
error naming the id, and the first one keeps its place: when the client goes, every request it
had is cancelled (none runs on to max_tokens for a dead client)."""

from integration_harness import Harness, check


def main():
    with Harness('fault_duplicate_request_id_is_refused', timeout=120) as h:
        model = h.make_model('small')
        daemon = h.start_daemon(model)
        out = h.run_fault_client('duplicate-id', '--max-tokens', '4000', '--ignore-eos', 'true', timeout=60)
        second = out['second']
        h.log(f'the second request with id 7: {second}')
        check(second is not None and second['kind'] == 'error' and second['code'] == 'invalid_request'
              and 'request_id 7' in second['text'] and 'in use' in second['text'],
              f'a duplicate live request id was not refused: {second}')
        # The client has exited: nothing of it may still generate.
        took = h.wait_clean(daemon, timeout=1.0)
        h.log(f'clean {took:.2f} s after the client exited')
        st = h.status()
        check(st['tokens_generated'] < 4000, f'{st["tokens_generated"]} tokens were generated for a dead client')
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
