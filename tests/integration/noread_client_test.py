"""A client that publishes requests and never reads its events cannot grow the daemon: it is
stalled (the daemon stops reading its request ring while its events wait) and then cut off
after [ipc] stall_timeout, for pings and for descriptors that fail to decode alike, while the
daemon's resident memory stays flat and another client keeps being served."""

import time

from integration_harness import Harness, bound, check, last_json_line, read_json_line

STALL_S = 2.0


def rss_bytes(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    return 0


def main():
    with Harness('fault_client_that_reads_nothing_is_cut_off', timeout=120) as h:
        model = h.make_model('small')
        daemon = h.start_daemon(model, {'ipc': {'stall_timeout': f'{int(bound(STALL_S) * 1000)}ms'}})
        for what in ('pings', 'bad'):
            before = rss_bytes(daemon.pid)
            flood_ms = int(bound(STALL_S + 4) * 1000)
            p = h.fault_client('noread', '--what', what, '--ms', str(flood_ms))
            check(read_json_line(p, 10) == {'ready': 'noread'}, f'{what}: the flooding client did not start')
            peak = before
            served = 0
            end = None
            while end is None:
                peak = max(peak, rss_bytes(daemon.pid))
                got = last_json_line(h.llmq('generate', '--json', '--prompt', 'Hi', '--max-tokens', '2',
                                            '--temperature', '0', timeout=30).stdout)
                check(got['finish_reason'] == 'length', f'{what}: a bystander was not served: {got}')
                served += 1
                end = read_json_line(p, 0.05)
            h.log(f'{what}: published {end["published"]} in {end["seconds"]:.1f} s, closed {end["closed"]}; '
                  f'daemon RSS {before / 2**20:.1f} -> peak {peak / 2**20:.1f} MiB; {served} bystanders served')
            check(end['closed'], f'{what}: a client that read nothing for {end["seconds"]:.1f} s was not cut off '
                                 f'(it published {end["published"]} requests)')
            check(end['seconds'] <= bound(STALL_S + 3), f'{what}: cut off only after {end["seconds"]:.1f} s')
            check(peak - before <= 64 << 20, f'{what}: the daemon grew by {(peak - before) / 2**20:.0f} MiB')
            check('cut off' in daemon.log(), 'the daemon did not log why it cut the client off')
        h.wait_clean(daemon, timeout=1.0)
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
