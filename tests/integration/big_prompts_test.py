"""A stream of 1 MiB text prompts from one client does not stall the others: the prompt's size
is checked against the context before anything copies or tokenizes it (no token is longer than
the model's longest piece, so a longer text cannot fit), tokenizing happens off the IPC thread, and one wake-up takes a bounded share of one client's requests. Another client's
connect + status stays fast throughout, and the prompts get a clear refusal."""

import time

from integration_harness import Harness, bound, check, read_json_line

PROMPT_BYTES = (1 << 20) - 64


def main():
    with Harness('fault_big_prompts_do_not_stall_other_clients', timeout=150) as h:
        model = h.make_model('small')
        daemon = h.start_daemon(model)

        def status_seconds():
            t = time.monotonic()
            h.status()
            return time.monotonic() - t

        alone = sorted(status_seconds() for _ in range(5))[2]
        p = h.fault_client('big-prompts', '--bytes', str(PROMPT_BYTES), '--ms', str(int(bound(6) * 1000)))
        check(read_json_line(p, 10) == {'ready': 'big-prompts'}, 'the prompt client did not start')
        time.sleep(0.3)
        times = []
        while p.poll() is None and len(times) < 40:
            times.append(status_seconds())
        end = read_json_line(p, 30)
        check(end is not None, 'the prompt client did not finish')
        worst = max(times)
        limit = alone + bound(0.5)
        h.log(f'{end["published"]} prompts of {PROMPT_BYTES} bytes, {end["answered"]} answered; status alone '
              f'{alone * 1000:.0f} ms, worst beside them {worst * 1000:.0f} ms of {len(times)} '
              f'(bound {limit * 1000:.0f} ms, ratio {worst / limit:.2f}); answer: {end["first_answer"]}')
        check(len(times) >= 5, f'only {len(times)} status queries ran beside the prompts')
        check(worst <= limit, f'a status query took {worst:.2f} s beside a stream of 1 MiB prompts')
        first = end['first_answer']
        check(first.get('kind') == 'error' and first.get('code') == 'invalid_request'
              and 'context of' in first.get('text', ''),
              f'a 1 MiB prompt was not refused by its size: {first}')
        check(end['answered'] >= 10, f'only {end["answered"]} prompts were answered')
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
