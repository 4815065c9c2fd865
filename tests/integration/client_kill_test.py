"""Clients SIGKILLed at each phase of a request leave nothing behind, and the clients running
beside them get exactly what they get in a run without kills.

Phases (llmq-fault-client pause --phase P stops there and waits for the SIGKILL):
  connect     socket connected, no hello sent
  handshake   hello sent, the welcome and its two descriptors left unread in the socket
  writing     region mapped, half the payload in the arena, the descriptor staged, not published
  published   descriptor published, the doorbell not rung yet
  queued      request queued behind 16 running ones (max_running_sequences = 16)
  prefill     a 1500-token prompt being prefilled (no token received yet)
  streaming   3 tokens read, then reading stops
  cancelling  1 token read, cancel sent, its answer not read

2 waves of 7 kills per phase: 112 kills. After each wave every killed client is gone from
`llmq status --json` within a second; after the bystanders finish, within a second: no client,
no running or queued request, no KV block in use, no more descriptors or region mappings in
the daemon than before, no new file in the ipc folder, nothing of llmq's in /dev/shm."""

import random
import signal
import time

from integration_harness import Harness, bound, check, collect, last_json_line, read_json_line

MAX_RUNNING = 16
KILLERS_PER_WAVE = 7
WAVES = 2
PHASES = ['connect', 'handshake', 'writing', 'published', 'queued', 'prefill', 'streaming', 'cancelling']
BYSTANDERS = [{'prompt': f'Bystander {i}: the weather today', 'max_tokens': 80 + 4 * i,
               'temperature': 0 if i % 2 == 0 else 0.9, 'ignore_eos': True,
               **({} if i % 2 == 0 else {'seed': 1000 + i, 'top_k': 30})} for i in range(MAX_RUNNING)]


def killer_args(phase, rng):
    if phase == 'queued':
        return ['--max-tokens', '50']
    if phase == 'prefill':
        return ['--prompt-tokens', '1500', '--max-tokens', '8', '--delay-ms', str(rng.randrange(0, 30))]
    if phase in ('streaming', 'cancelling'):
        return ['--max-tokens', '2000']
    return []


def main():
    with Harness('fault_killed_clients_leave_nothing_behind', timeout=175) as h:
        rng = random.Random(99)
        model = h.make_model('medium', dim=256, layers=4, heads=4, kv_heads=2, ffn=512)
        daemon = h.start_daemon(model, {'scheduler': {'max_running_sequences': MAX_RUNNING, 'prefill_chunk': 32,
                                                      'max_tokens_per_step': 128}})
        ipc_before = h.ipc_files()
        shm_before = h.shm_files()
        baseline = h.daemon_baseline(daemon)

        def run_bystanders(indices):
            return [(i, h.start_generate(BYSTANDERS[i])) for i in indices]

        def finish_bystanders(running):
            out = {}
            for i, p in running:
                rc, stdout, err = collect(p, timeout=90)
                check(rc == 0, f'bystander {i} exited {rc}: {err.strip()}')
                out[i] = last_json_line(stdout)['tokens']
            return out

        # The run without kills.
        reference = finish_bystanders(run_bystanders(range(MAX_RUNNING)))
        h.log(f'reference run of {MAX_RUNNING} bystanders done')
        h.wait_clean(daemon, timeout=1.0, baseline=baseline)

        kills = 0
        ready = {p: 0 for p in PHASES}
        slowest_cleanup = 0.0
        for phase in PHASES:
            for wave in range(WAVES):
                indices = range(MAX_RUNNING) if phase == 'queued' else rng.sample(range(MAX_RUNNING), 3)
                bystanders = run_bystanders(indices)
                if phase == 'queued':
                    # Every sequence slot taken, so the killers' requests wait in the queue.
                    def all_running():
                        return h.status()['requests']['running'] >= MAX_RUNNING
                    deadline = time.monotonic() + 20
                    while not all_running():
                        check(time.monotonic() < deadline, 'the bystanders never filled the sequence slots')
                        time.sleep(0.01)
                killers = [h.fault_client('pause', '--phase', phase, *killer_args(phase, rng))
                           for _ in range(KILLERS_PER_WAVE)]
                for k in killers:
                    said = read_json_line(k, 30)
                    check(said is not None, lambda: f'{phase}: a killer said nothing: {k.stderr.read() if k.poll() is not None else ""}')
                    ready[phase] += 'ready' in said
                if phase == 'queued':
                    st = h.status()
                    check(st['requests']['queued'] >= KILLERS_PER_WAVE,
                          f'queued phase: only {st["requests"]["queued"]} requests queued at the kill')
                pids = {k.pid for k in killers}
                for k in killers:
                    k.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                for k in killers:
                    k.wait(timeout=5)
                kills += len(killers)

                def gone():
                    st = h.status()
                    return not [c for c in st['client_list'] if c['pid'] in pids]
                deadline = killed_at + bound(1.0)
                while not gone():
                    check(time.monotonic() < deadline, f'{phase}: killed clients still listed 1 s after SIGKILL')
                    time.sleep(0.01)
                slowest_cleanup = max(slowest_cleanup, time.monotonic() - killed_at)

                got = finish_bystanders(bystanders)
                for i, tokens in got.items():
                    check(tokens == reference[i], f'{phase} wave {wave}: bystander {i} got other tokens than without kills')
                took = h.wait_clean(daemon, timeout=1.0, baseline=baseline)
                check(daemon.alive(), f'llmqd died during the {phase} kills')
            h.log(f'{phase}: {WAVES * KILLERS_PER_WAVE} killed, {ready[phase]} of them at the phase; clean after the '
                  f'bystanders in {took * 1000:.0f} ms')

        check(kills >= 100, f'only {kills} kills')
        for phase, n in ready.items():
            check(n >= WAVES * KILLERS_PER_WAVE // 2, f'only {n} of {WAVES * KILLERS_PER_WAVE} killers reached {phase}')
        h.log(f'{kills} kills; killed clients gone from status within {slowest_cleanup * 1000:.0f} ms at worst')

        new_ipc = h.ipc_files() - ipc_before
        check(not new_ipc, f'new files in the ipc folder: {new_ipc}')
        new_shm = h.shm_files() - shm_before
        ours = {f for f in new_shm if 'llmq' in f} | daemon.shm_files_open()
        check(not ours, f'llmqd left files in /dev/shm: {ours}')
        if new_shm:
            h.log(f'note: other processes on this machine created /dev/shm entries meanwhile: {sorted(new_shm)[:5]}')
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
