"""A model file truncated under a running llmqd: the daemon exits with status 74 and a message
naming the file, and removes its socket (it used to die of a silent SIGBUS and leave it)."""

import os

from integration_harness import Harness, check

MODEL_FILE_FAULT_EXIT = 74  # model_file_fault_exit_code


def main():
    with Harness('fault_truncated_model_file_exits_naming_it', timeout=150) as h:
        # Under AddressSanitizer the daemon's own SIGBUS handler must be the one that runs.
        asan = h.env.get('ASAN_OPTIONS', '')
        h.env['ASAN_OPTIONS'] = (asan + ':' if asan else '') + 'allow_user_segv_handler=1'
        model = h.make_model('doomed')
        daemon = h.start_daemon(model)
        socket = os.path.join(h.ipc_dir, 'llmq-default.sock')
        check(os.path.exists(socket), 'no socket while serving')
        spec = ['--prompt', 'Hello', '--max-tokens', '4', '--temperature', '0']
        h.llmq('generate', *spec)  # the weights have been read once: pages cached and mapped

        with open(model, 'r+b') as f:
            f.truncate(4096)
        h.log('truncated the model file to 4096 bytes')
        r = h.llmq('generate', *spec, check_rc=False, timeout=60)
        rc = daemon.wait(timeout=30)
        log = daemon.log()
        check(rc == MODEL_FILE_FAULT_EXIT, f'llmqd exited {rc}, expected {MODEL_FILE_FAULT_EXIT}:\n{log[-3000:]}')
        check(model in log and 'SIGBUS' in log and 'changed while it was being served' in log,
              f'the message does not name the file and the fault:\n{log[-3000:]}')
        check(not os.path.exists(socket), 'the socket was left behind')
        check(r.returncode != 0, 'the request that met the fault reported success')
        h.log(f'daemon exited {rc}: {[l for l in log.splitlines() if "SIGBUS" in l][0]}')


if __name__ == '__main__':
    main()
