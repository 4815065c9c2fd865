"""Shared pieces of llmq's integration and fault tests.

Each test is a Python script run by meson with the paths of the programs it needs:

    test.py --llmqd PATH --llmq PATH --make-model PATH --fault-client PATH

and uses one Harness: a private temporary folder (models, configs, logs) with its own
LLMQ_IPC_DIR (mode 0700), so nothing touches the user's default instance. Every process a test
starts goes through the Harness, which kills whatever is still running when the test ends, fails
or times out (a watchdog alarm bounds the whole test). Waits are bounded loops.

Run by hand: /usr/bin/python3 tests/integration/X_test.py --llmqd build/runtime/src/daemon/llmqd ...
Set LLMQ_TEST_KEEP=1 to keep the temporary folder (logs) after a failure, LLMQ_TEST_TIME_SCALE to
stretch every time bound (sanitizer builds).
"""

import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

# Flags of `llmq run` and `llmq generate` a request spec may carry.
_SPEC_FLAGS = {
    'max_tokens': '--max-tokens', 'temperature': '--temperature', 'top_k': '--top-k',
    'top_p': '--top-p', 'min_p': '--min-p', 'repeat_penalty': '--repeat-penalty',
    'presence_penalty': '--presence-penalty', 'frequency_penalty': '--frequency-penalty',
    'seed': '--seed',
}


# Sanitizer builds run several times slower: time bounds are multiplied by this (run_sanitizers.sh).
TIME_SCALE = float(os.environ.get('LLMQ_TEST_TIME_SCALE', '1'))


def bound(seconds):
    """A time bound of the release build, scaled for slower (sanitized) builds."""
    return seconds * TIME_SCALE


class TestFailure(Exception):
    pass


def check(condition, message):
    """Fails the test with `message` (a string or a callable giving one) unless `condition`."""
    if not condition:
        raise TestFailure(message() if callable(message) else message)


def wait_until(predicate, timeout, interval=0.01, what='condition'):
    """Calls predicate until it returns a true value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TestFailure(f'timed out after {timeout} s waiting for {what}')
        time.sleep(interval)


def request_args(spec):
    """Command-line flags of one request spec (a dict), as `llmq run` and `llmq generate` take them."""
    args = []
    if 'prompt_tokens' in spec:
        args += ['--prompt-tokens', ','.join(str(t) for t in spec['prompt_tokens'])]
    else:
        args += ['--prompt', spec['prompt']]
    for key, flag in _SPEC_FLAGS.items():
        if key in spec:
            args += [flag, str(spec[key])]
    for stop in spec.get('stop', []):
        args += ['--stop', stop]
    if spec.get('ignore_eos'):
        args.append('--ignore-eos')
    return args


def png_bytes(w, h, seed, noise=False):
    """An 8-bit RGB PNG: a pattern of `seed`, or incompressible noise (a file of a known size)."""
    if noise:
        pixels = os.urandom(w * h * 3)
        rows = b''.join(b'\x00' + pixels[y * w * 3:(y + 1) * w * 3] for y in range(h))
    else:
        rows = b''.join(b'\x00' + bytes((x * 7 + y * 13 + seed * 31 + ch * 50) % 256 for x in range(w) for ch in range(3))
                        for y in range(h))

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(rows, 0 if noise else 6)) + chunk(b'IEND', b''))


def last_json_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise TestFailure('expected JSON output, got nothing')
    return json.loads(lines[-1])


def _shm_entries():
    try:
        return set(os.listdir('/dev/shm'))
    except OSError:
        return set()


class Daemon:
    """One llmqd process. Start it with Harness.start_daemon()."""

    def __init__(self, harness, process, log_path, instance):
        self.harness = harness
        self.process = process
        self.log_path = log_path
        self.instance = instance

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        return self.process.poll() is None

    def log(self):
        with open(self.log_path, errors='replace') as f:
            return f.read()

    def wait_serving(self, timeout=30):
        def serving():
            if not self.alive():
                raise TestFailure(f'llmqd exited with {self.process.returncode} before serving:\n{self.log()}')
            return 'info  serving' in self.log() or ' serving\n' in self.log()
        wait_until(serving, timeout, what='llmqd to serve')

    def signal(self, sig):
        if self.alive():
            self.process.send_signal(sig)

    def wait(self, timeout):
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure(f'llmqd did not exit within {timeout} s:\n{self.log()[-3000:]}')

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit code."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def fd_count(self):
        return len(os.listdir(f'/proc/{self.pid}/fd'))

    def memfd_mappings(self):
        """Mappings of memfds (client regions) in the daemon's address space."""
        with open(f'/proc/{self.pid}/maps') as f:
            return sum(1 for line in f if '/memfd:' in line)

    def shm_files_open(self):
        """Files under /dev/shm the daemon has open or mapped."""
        found = set()
        for fd in os.listdir(f'/proc/{self.pid}/fd'):
            try:
                target = os.readlink(f'/proc/{self.pid}/fd/{fd}')
            except OSError:
                continue
            if target.startswith('/dev/shm/'):
                found.add(target)
        with open(f'/proc/{self.pid}/maps') as f:
            for line in f:
                if '/dev/shm/' in line:
                    found.add(line.split()[-1])
        return found


class Harness:
    def __init__(self, name, timeout=170):
        parser = argparse.ArgumentParser()
        for flag in ('--llmqd', '--llmq', '--make-model', '--fault-client'):
            parser.add_argument(flag, required=True)
        # Flags a test adds itself (the gateway's path, ...) stay in self.extra_args.
        self.args, self.extra_args = parser.parse_known_args()
        for key, value in vars(self.args).items():
            setattr(self.args, key, os.path.abspath(value))
        self.name = name
        self.timeout = int(bound(timeout))
        self.processes = []
        self.daemons = []
        self.tmp = tempfile.mkdtemp(prefix='llmq-it-', dir='/tmp')
        self.ipc_dir = os.path.join(self.tmp, 'ipc')
        os.mkdir(self.ipc_dir, 0o700)
        self.env = dict(os.environ)
        self.env['LLMQ_IPC_DIR'] = self.ipc_dir
        self.env.pop('XDG_RUNTIME_DIR', None)
        self._daemon_count = 0
        self.failed = False

    # ---- lifetime -----------------------------------------------------------------------------

    def __enter__(self):
        def on_alarm(signum, frame):
            raise TestFailure(f'{self.name}: the whole test took longer than {self.timeout} s')
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(self.timeout)
        self.started = time.monotonic()
        return self

    def __exit__(self, kind, value, tb):
        signal.alarm(0)
        self.failed = kind is not None
        for p in self.processes:
            if p.poll() is None:
                p.kill()
        for d in self.daemons:
            if d.alive():
                d.process.kill()
        for p in self.processes + [d.process for d in self.daemons]:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.failed:
            for d in self.daemons:
                print(f'---- llmqd log ({d.log_path}) ----\n{d.log()[-6000:]}', file=sys.stderr)
        if self.failed and os.environ.get('LLMQ_TEST_KEEP'):
            print(f'kept {self.tmp}', file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if kind is TestFailure:
            print(f'FAIL {self.name}: {value}', file=sys.stderr)
            sys.exit(1)
        if kind is None:
            print(f'PASS {self.name} in {time.monotonic() - self.started:.1f} s')
        return False

    def log(self, message):
        print(f'[{time.monotonic() - self.started:7.2f}] {message}', flush=True)

    # ---- files --------------------------------------------------------------------------------

    def path(self, name):
        return os.path.join(self.tmp, name)

    def make_model(self, name='model', dim=64, layers=2, heads=4, kv_heads=2, ffn=128, real_vocab=True, extra=()):
        """A random Llama GGUF; the llama-spm vocabulary when the shared folder has it."""
        out = self.path(name + '.gguf')
        args = [self.args.make_model, '--out', out, '--dim', str(dim), '--layers', str(layers), '--heads',
                str(heads), '--kv-heads', str(kv_heads), '--ffn', str(ffn), '--name', name, *extra]
        vocab = os.path.join(os.environ.get('LLMQ_SHARED_VOCAB_DIR', ''), 'llama-spm.gguf')
        if real_vocab and os.path.isfile(vocab):
            args += ['--vocab-from', vocab]
        else:
            args += ['--vocab', '512']
        subprocess.run(args, check=True, capture_output=True, timeout=60)
        return out

    def make_clip(self, name='mmproj', projection_dim=64):
        """A random LLaVA-style clip projector GGUF (28 px, 7 px patches: 16 image positions) for a
        text model of width projection_dim."""
        out = self.path(name + '.gguf')
        subprocess.run([self.args.make_model, '--clip', '--out', out, '--dim', '32', '--heads', '2', '--layers', '3',
                        '--ffn', '64', '--image-size', '28', '--patch-size', '7', '--projection-dim',
                        str(projection_dim)], check=True, capture_output=True, timeout=60)
        return out

    def write_config(self, name, sections):
        """A TOML file from {section: {key: value}}; values are str, int, float or bool."""
        lines = []
        for section, keys in sections.items():
            lines.append(f'[{section}]')
            for key, value in keys.items():
                if isinstance(value, bool):
                    text = 'true' if value else 'false'
                elif isinstance(value, (int, float)):
                    text = repr(value)
                else:
                    text = json.dumps(value)
                lines.append(f'{key} = {text}')
        out = self.path(name + '.toml')
        with open(out, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        return out

    # ---- processes ----------------------------------------------------------------------------

    def spawn(self, args, stdin=subprocess.DEVNULL, **kwargs):
        """Starts a child (text pipes for stdout and stderr) that the harness kills at the end."""
        p = subprocess.Popen(args, env=self.env, stdin=stdin, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, **kwargs)
        self.processes.append(p)
        return p

    def start_daemon(self, model, sections=None, instance='default', wait=True, log_level='info'):
        self._daemon_count += 1
        log_path = self.path(f'llmqd-{self._daemon_count}.log')
        args = [self.args.llmqd, '--model', model, '--instance', instance, '--log-level', log_level]
        if sections:
            args += ['--config', self.write_config(f'llmqd-{self._daemon_count}', sections)]
        log = open(log_path, 'w')
        process = subprocess.Popen(args, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        daemon = Daemon(self, process, log_path, instance)
        self.daemons.append(daemon)
        if wait:
            daemon.wait_serving()
        return daemon

    def llmq(self, *args, timeout=60, check_rc=True):
        r = subprocess.run([self.args.llmq, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check_rc and r.returncode != 0:
            raise TestFailure(f'llmq {" ".join(args[:3])} exited {r.returncode}: {r.stderr.strip()}')
        return r

    def status(self, instance='default'):
        return json.loads(self.llmq('status', '--json', '--instance', instance, timeout=15).stdout)

    def run_reference(self, model, spec):
        """`llmq run --json` in-process: the final object."""
        r = self.llmq('run', '--model', model, '--json', *request_args(spec), timeout=120)
        return last_json_line(r.stdout)

    def start_generate(self, spec, instance='default'):
        return self.spawn([self.args.llmq, 'generate', '--json', '--instance', instance, *request_args(spec)])

    def fault_client(self, *args, stdin=subprocess.DEVNULL):
        return self.spawn([self.args.fault_client, *args], stdin=stdin)

    def run_fault_client(self, *args, timeout=60):
        """Runs llmq-fault-client to its end; returns its last JSON line."""
        p = self.fault_client(*args)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise TestFailure(f'llmq-fault-client {" ".join(args)} did not finish within {timeout} s')
        if p.returncode != 0:
            raise TestFailure(f'llmq-fault-client {" ".join(args)} exited {p.returncode}: {err.strip()}')
        return last_json_line(out)

    # ---- checks -------------------------------------------------------------------------------

    def ipc_files(self):
        return set(os.listdir(self.ipc_dir))

    def shm_files(self):
        return _shm_entries()

    def wait_clean(self, daemon, timeout=1.0, baseline=None):
        """Waits (at most `timeout` s) until llmqd shows no client but the status query itself,
        no running or queued request, no KV block in use, and (with a baseline from
        daemon_baseline()) no more descriptors or region mappings than then. Returns the
        seconds it took. `timeout` is the release build's bound (scaled by bound())."""
        timeout = bound(timeout)
        start = time.monotonic()
        last = {}

        def clean():
            # Resources first: the previous status query's connection is gone by now.
            resources = (daemon.fd_count(), daemon.memfd_mappings()) if baseline is not None else None
            st = self.status(daemon.instance)
            others = [c for c in st['client_list'] if c['name'] != 'llmq status']
            last['status'] = {'clients': others, 'requests': st['requests'], 'kv_blocks': st['kv_blocks']}
            ok = (not others and st['requests']['running'] == 0 and st['requests']['queued'] == 0
                  and st['kv_blocks']['used'] == 0)
            if baseline is not None:
                last['resources'] = {'fds, region mappings': resources, 'baseline': baseline}
                ok = ok and resources[0] <= baseline[0] and resources[1] <= baseline[1]
            return ok

        try:
            wait_until(clean, timeout, interval=0.02, what='llmqd to be clean')
        except TestFailure:
            raise TestFailure(f'llmqd not clean within {timeout} s: {json.dumps(last)}')
        return time.monotonic() - start

    def daemon_baseline(self, daemon):
        """Descriptors and region mappings of an idle daemon (the status query's own connection
        counts once in both; wait_clean compares like with like)."""
        self.wait_clean(daemon, timeout=5)
        time.sleep(0.1)  # the status query's connection closes
        return (daemon.fd_count(), daemon.memfd_mappings())


def collect(process, timeout):
    """Waits for a child; returns (returncode, stdout, stderr)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise TestFailure(f'{process.args[:3]} did not finish within {timeout} s; stderr: {err.strip()}')
    return process.returncode, out, err


def read_json_line(process, timeout):
    """The next JSON line on a child's stdout, or None when it ends or `timeout` passes first."""
    import select
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            continue
        line = process.stdout.readline()
        if not line:
            return None
        if line.strip():
            return json.loads(line)
    return None
