"""A second llmqd on the same instance refuses at once, names the holder's pid and exits non-zero,
leaving the first one's socket and service untouched; another instance in the same folder
starts beside it."""

import os

from integration_harness import Harness, check, last_json_line


def main():
    with Harness('integration_second_daemon_refuses_naming_holder', timeout=120) as h:
        model = h.make_model('small')
        first = h.start_daemon(model)
        spec = {'prompt': 'Hello', 'max_tokens': 8, 'temperature': 0}
        want = h.run_reference(model, spec)

        second = h.start_daemon(model, wait=False)
        rc = second.wait(timeout=10)
        log = second.log()
        check(rc != 0, f'the second llmqd exited {rc}, expected non-zero:\n{log}')
        check(f'pid {first.pid}' in log, f'the refusal does not name the holder (pid {first.pid}):\n{log}')
        check('default' in log, f'the refusal does not name the instance:\n{log}')
        check('serving' not in log, f'the second llmqd got as far as serving:\n{log}')
        h.log(f'second daemon refused: {log.strip().splitlines()[-1]}')

        # The first is untouched: its socket is still there and it still answers.
        check(os.path.exists(os.path.join(h.ipc_dir, 'llmq-default.sock')), 'the refused daemon removed the socket')
        check(first.alive(), 'the first llmqd died')
        got = last_json_line(h.llmq('generate', '--json', '--prompt', 'Hello', '--max-tokens', '8',
                                    '--temperature', '0').stdout)
        check(got['tokens'] == want['tokens'], 'the first llmqd no longer serves correctly')
        check(h.status()['pid'] == first.pid, 'status names another daemon')

        # Another instance in the same folder is independent.
        other = h.start_daemon(model, instance='other')
        check(h.status('other')['pid'] == other.pid, 'instance "other" is not served by its own daemon')
        check(other.stop() == 0 and first.stop() == 0, 'a daemon did not exit 0 on SIGTERM')
        leftover = {f for f in h.ipc_files() if f.endswith('.sock')}
        check(not leftover, f'sockets left after both daemons stopped: {leftover}')


if __name__ == '__main__':
    main()
