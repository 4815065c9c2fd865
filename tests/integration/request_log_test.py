"""llmqd writes one info line per finished request: the client's request id, the connection,
the client's pid, prompt and generated tokens, time to first token, tokens/s and the finish
reason; a cancelled request gets its line too."""

import re
import signal
import time

from integration_harness import Harness, bound, check, last_json_line, wait_until

LINE = re.compile(r'request (\d+) of client (\d+) \(pid (\d+)\): (\d+) prompt \+ (\d+) generated tokens, '
                  r'first token ([\d.]+) ms, ([\d.]+) tok/s, finish (\w+)')


def finished_lines(daemon):
    return [m for m in (LINE.search(l) for l in daemon.log().splitlines()) if m]


def main():
    with Harness('integration_request_log_names_each_finished_request', timeout=120) as h:
        model = h.make_model('small')
        daemon = h.start_daemon(model)
        p = h.start_generate({'prompt': 'Once upon a time', 'max_tokens': 6, 'temperature': 0, 'ignore_eos': True})
        out, err = p.communicate(timeout=bound(60))
        check(p.returncode == 0, f'generate failed: {err}')
        final = last_json_line(out)
        wait_until(lambda: finished_lines(daemon), bound(10), what='the request line in the log')
        m = finished_lines(daemon)[0]
        h.log('log: ' + m.group(0))
        check(int(m.group(3)) == p.pid, f'pid {m.group(3)} is not the client\'s {p.pid}')
        check(int(m.group(4)) == len(final['prompt_tokens']),
              f'{m.group(4)} prompt tokens logged, the client saw {len(final["prompt_tokens"])}')
        check(int(m.group(5)) == len(final['tokens']) == 6, f'{m.group(5)} generated tokens logged')
        check(float(m.group(6)) > 0 and float(m.group(7)) > 0, 'no time to first token or tokens/s')
        check(m.group(8) == 'length', f'finish {m.group(8)}, expected length')

        # A cancelled request (Ctrl-C in llmq generate) is logged as cancelled.
        p = h.start_generate({'prompt': 'Hi', 'max_tokens': 2000, 'ignore_eos': True})
        wait_until(lambda: h.status()['requests']['running'] > 0, bound(20), what='the request to run')
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=bound(30))
        wait_until(lambda: len(finished_lines(daemon)) >= 2, bound(10), what='the cancelled request\'s line')
        m = finished_lines(daemon)[1]
        h.log('log: ' + m.group(0))
        check(m.group(8) == 'cancelled' and int(m.group(3)) == p.pid, f'not a cancelled line of pid {p.pid}')
        check(daemon.stop() == 0, 'llmqd did not stop cleanly')


if __name__ == '__main__':
    main()
