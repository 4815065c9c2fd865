"""An idle daemon sleeps: with no client request running or queued, no thread of llmqd wakes on
a timer (the flush tick stops itself, the engine waits without a timeout). Counted as the
voluntary context switches of all its threads over a few idle seconds, after a request ran (so
the ticks that serve requests have started and must have stopped again). And it burns no CPU:
the spin on the rings after the last work ([ipc] idle_spin_us) ends, and the process uses
under 1 % of a core over the idle seconds."""

import os
import time

from integration_harness import Harness, check

IDLE_S = 3.0


def wakeups(pid):
    total = 0
    for task in os.listdir(f'/proc/{pid}/task'):
        try:
            with open(f'/proc/{pid}/task/{task}/status') as f:
                for line in f:
                    if line.startswith('voluntary_ctxt_switches:'):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')  # utime + stime


def main():
    with Harness('integration_idle_daemon_does_not_wake', timeout=60) as h:
        model = h.make_model('small')
        daemon = h.start_daemon(model)
        h.llmq('generate', '--json', '--prompt', 'Hi', '--max-tokens', '4')
        h.wait_clean(daemon, timeout=1.0)
        time.sleep(0.2)  # the last tick after the request sees nothing and stops
        before = wakeups(daemon.pid)
        cpu_before = cpu_seconds(daemon.pid)
        time.sleep(IDLE_S)
        woke = wakeups(daemon.pid) - before
        cpu = cpu_seconds(daemon.pid) - cpu_before
        h.log(f'an idle llmqd used {cpu * 1000:.0f} ms of CPU in {IDLE_S} s (bound {IDLE_S * 10:.0f} ms: 1 %)')
        check(cpu <= IDLE_S * 0.01, f'an idle llmqd used {cpu * 1000:.0f} ms of CPU in {IDLE_S} s')
        h.log(f'an idle llmqd woke {woke} times in {IDLE_S} s (bound 2; a 500 ms tick alone is 6)')
        check(woke <= 2, f'an idle llmqd woke {woke} times in {IDLE_S} s')
        check(h.llmq('generate', '--json', '--prompt', 'Hi', '--max-tokens', '2').returncode == 0,
              'the daemon did not serve after sleeping')
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
