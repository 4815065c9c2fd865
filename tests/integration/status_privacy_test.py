"""`llmq status` names another user's clients only to that user and to the daemon's own user:
a client of uid 65534 sees its own clients and only a count of the others, and the daemon's
user sees everyone. Needs root (to run a client as another user); skipped otherwise."""

import grp
import json
import os
import subprocess
import sys

from integration_harness import Harness, check, read_json_line

NOBODY = 65534


def main():
    if os.geteuid() != 0:
        print('skipped: needs root to run a client as another user')
        sys.exit(77)
    with Harness('integration_status_hides_other_users_clients', timeout=120) as h:
        # The other user must reach the socket: the group decides, through a 0750 directory.
        os.chmod(h.tmp, 0o711)
        os.chown(h.ipc_dir, 0, NOBODY)
        os.chmod(h.ipc_dir, 0o750)
        model = h.make_model('small')
        daemon = h.start_daemon(model, {'ipc': {'group': grp.getgrgid(NOBODY).gr_name, 'allowed_users': [str(NOBODY)]}})
        # A client of the daemon's own user, named "fault late", that stays connected until its
        # stdin closes (with stdin at EOF it would submit, finish and leave at once).
        mine = h.fault_client('late', stdin=subprocess.PIPE)
        check(read_json_line(mine, 10) == {'ready': 'late'}, 'the root client did not connect')

        def as_nobody():
            os.setgid(NOBODY)
            os.setgroups([])
            os.setuid(NOBODY)

        r = subprocess.run([h.args.llmq, 'status', '--json'], env=h.env, capture_output=True, text=True,
                           timeout=15, preexec_fn=as_nobody)
        check(r.returncode == 0, f'uid {NOBODY} could not ask for status: {r.stderr.strip()}')
        theirs = json.loads(r.stdout)
        names = [c['name'] for c in theirs['client_list']]
        h.log(f'uid {NOBODY} sees {names}, {theirs.get("other_users_clients")} others, {theirs["clients"]} in all')
        check('fault late' not in names, f'uid {NOBODY} saw root\'s client: {theirs["client_list"]}')
        check(all(c['uid'] == NOBODY for c in theirs['client_list']), f'uid {NOBODY} saw others: {theirs["client_list"]}')
        check(names == ['llmq status'], f'uid {NOBODY} does not see its own client: {names}')
        check(theirs.get('other_users_clients', 0) >= 1 and theirs['clients'] >= 2, 'the others are not counted')
        ours = h.status()
        check('fault late' in [c['name'] for c in ours['client_list']], 'the daemon\'s user does not see its client')
        mine.kill()
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
