"""[ipc] allowed_users narrows [ipc] group: a member of the group who is not on the list reaches
the socket (the 0750 folder lets the group in) and is refused at connect, naming the uid; on
the list, the same user is served; without a group the daemon refuses the list at load, saying
why. Needs root (to run a client as another user); skipped otherwise."""

import grp
import os
import subprocess
import sys

from integration_harness import Harness, check

NOBODY = 65534


def main():
    if os.geteuid() != 0:
        print('skipped: needs root to run a client as another user')
        sys.exit(77)
    with Harness('integration_allowed_users_narrows_the_group', timeout=120) as h:
        os.chmod(h.tmp, 0o711)
        model = h.make_model('small')
        group = grp.getgrgid(NOBODY).gr_name

        def as_nobody():
            os.setgid(NOBODY)
            os.setgroups([])
            os.setuid(NOBODY)

        def nobody_generates():
            return subprocess.run([h.args.llmq, 'generate', '--prompt-tokens', '1,2', '--max-tokens', '2'], env=h.env,
                                  capture_output=True, text=True, timeout=30, preexec_fn=as_nobody)

        daemon = h.start_daemon(model, {'ipc': {'group': group, 'allowed_users': ['1']}})
        r = nobody_generates()
        h.log(f'a group member not on the list: exit {r.returncode}: {r.stderr.strip()}')
        check(r.returncode != 0 and f'uid {NOBODY} may not use this llmqd instance' in r.stderr,
              f'uid {NOBODY} (in group {group}, not in allowed_users) was not refused by the list: {r.stderr}')
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')

        daemon = h.start_daemon(model, {'ipc': {'group': group, 'allowed_users': ['1', str(NOBODY)]}})
        r = nobody_generates()
        check(r.returncode == 0, f'uid {NOBODY} on the list was not served: {r.stderr}')
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')

        r = subprocess.run([h.args.llmqd, '--model', model, '--config',
                            h.write_config('nogroup', {'ipc': {'allowed_users': [str(NOBODY)]}})],
                           env=h.env, capture_output=True, text=True, timeout=30)
        h.log(f'allowed_users without a group: exit {r.returncode}: {r.stderr.strip()}')
        check(r.returncode == 2 and 'allowed_users' in r.stderr and 'needs [ipc] group' in r.stderr,
              f'allowed_users without a group was not refused at load with the reason: {r.stderr}')


if __name__ == '__main__':
    main()
