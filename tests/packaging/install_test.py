"""`meson install --destdir` installs a service that starts as shipped.

    install_test.py BUILD_DIR MAKE_MODEL --part files|second-user

files: the daemon, the CLI, the plugins and probe, the client library and its pkg-config file,
the systemd unit, its sysusers file and every document the unit names land under the prefix;
the unit's ExecStart names the installed daemon; run from the install tree (no LLMQ_PLUGIN_DIR)
the daemon loads the installed plugins, not the build's, and serves the installed CLI.

second-user: the unit's command line (ExecStart, User=, RuntimeDirectory=, Environment=) run
as another user than the test's, as systemd would run it: a test user made with useradd (root
only; 77 otherwise), its socket folder made 0700 as RuntimeDirectoryMode= says, [ipc] group
set, so llmqd turns the folder 0750 and the group's; a client of another user (root) is served
through it, and SIGTERM leaves the folder empty.
"""

import argparse
import grp
import json
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

TEST_USER = 'llmq-test-svc'
TIME_SCALE = float(os.environ.get('LLMQ_TEST_TIME_SCALE', '1'))


def fail(message):
    print('FAIL: ' + message, flush=True)
    sys.exit(1)


def skip(message):
    print('SKIP: ' + message, flush=True)
    sys.exit(77)


def check(condition, message):
    if not condition:
        fail(message() if callable(message) else message)


def build_options(build):
    out = subprocess.run(['meson', 'introspect', '--buildoptions', build], capture_output=True, text=True,
                         check=True).stdout
    return {o['name']: o['value'] for o in json.loads(out)}


def under(root, prefix, path):
    """The DESTDIR path of a path relative to the prefix (or absolute)."""
    full = path if os.path.isabs(path) else os.path.join(prefix, path)
    return root + full


def parse_unit(path):
    """[Section] key=value lines; repeated keys keep every value."""
    unit, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in '#;':
                continue
            if line.startswith('['):
                section = line.strip('[]')
                continue
            key, _, value = line.partition('=')
            unit.setdefault(section, {}).setdefault(key.strip(), []).append(value.strip())
    return unit


def wait_for(predicate, seconds, what, process=None, log=None):
    deadline = time.monotonic() + seconds * TIME_SCALE
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            fail(f'llmqd exited {process.returncode} while waiting for {what}:\n{open(log).read()}')
        time.sleep(0.05)
    fail(f'timed out waiting for {what}' + (f':\n{open(log).read()}' if log else ''))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('build')
    ap.add_argument('make_model')
    ap.add_argument('--part', choices=['files', 'second-user'], required=True)
    args = ap.parse_args()

    created_user = False
    if args.part == 'second-user':
        if os.geteuid() != 0:
            skip('running the unit as its own user needs root (to make a test user and switch to it); '
                 f'this test runs as uid {os.geteuid()}')
        if shutil.which('useradd') is None:
            skip('useradd is not installed, so no second user can be made')
        try:
            pwd.getpwnam(TEST_USER)
        except KeyError:
            r = subprocess.run(['useradd', '--system', '--no-create-home', '--user-group', '--shell',
                                '/usr/sbin/nologin', TEST_USER], capture_output=True, text=True)
            if r.returncode != 0:
                skip(f'useradd {TEST_USER} failed: {r.stderr.strip()}')
            created_user = True

    scratch = tempfile.mkdtemp(prefix='llmq-install-')
    daemon = None
    try:
        os.chmod(scratch, 0o711)  # the test user must reach the install tree and the model
        root = os.path.join(scratch, 'root')
        r = subprocess.run(['meson', 'install', '-C', args.build, '--no-rebuild', '--destdir', root, '--quiet'],
                           capture_output=True, text=True)
        check(r.returncode == 0, lambda: f'meson install failed:\n{r.stdout}\n{r.stderr}')
        opts = build_options(args.build)
        prefix = opts['prefix']
        inst = lambda key, *rest: under(root, prefix, os.path.join(opts[key], *rest))
        expected = {
            'the daemon': inst('sbindir', 'llmqd'),
            'the CLI': inst('bindir', 'llmq'),
            'the gateway': inst('bindir', 'llmq-gateway'),
            'the gemm plugin': inst('libdir', 'llmq', 'plugins', 'llmq-gemm-cpu.so'),
            'the attention plugin': inst('libdir', 'llmq', 'plugins', 'llmq-attention-cpu.so'),
            'the plugin probe': inst('libexecdir', 'llmq', 'llmq-plugin-probe'),
            'the C client header': inst('includedir', 'llmq', 'llmq_client.h'),
            'the pkg-config file': inst('libdir', 'pkgconfig', 'llmq-client.pc'),
            'the systemd unit': under(root, prefix, 'lib/systemd/system/llmqd.service'),
            'the sysusers file': under(root, prefix, 'lib/sysusers.d/llmq.conf'),
            'the example config': inst('datadir', 'doc', 'llmq', 'llmq.toml.example'),
        }
        for what, path in expected.items():
            check(os.path.isfile(path), f'{what} is not installed at {path[len(root):]}')
        print(f'installed under {root}{prefix}: ' + ', '.join(expected), flush=True)

        unit = parse_unit(expected['the systemd unit'])
        service = unit.get('Service', {})
        for doc in ' '.join(unit.get('Unit', {}).get('Documentation', [])).split():
            check(doc.startswith('file://'), f'Documentation={doc} is not a file:// address')
            check(os.path.isfile(root + doc[len('file://'):]), f'the unit names {doc}, which is not installed')
        with open(expected['the sysusers file']) as f:
            check(any(l.split()[:2] == ['u', service['User'][0]] for l in f if l.strip() and l[0] != '#'),
                  f'the sysusers file does not create the unit\'s User={service["User"][0]}')
        command = shlex.split(service['ExecStart'][0])
        check(command[0] == os.path.join(prefix, opts['sbindir'], 'llmqd') and os.path.isfile(root + command[0]),
              f'ExecStart runs {command[0]}, not the installed llmqd')
        check('--config' in command, 'ExecStart passes no --config')
        config_path = root + command[command.index('--config') + 1]
        env = {'PATH': '/usr/bin:/bin'}
        for assignment in service.get('Environment', []):
            key, _, value = assignment.partition('=')
            env[key] = value
        runtime_dir = service['RuntimeDirectory'][0]
        check(env.get('LLMQ_IPC_DIR') == '/run/' + runtime_dir,
              f'the unit\'s LLMQ_IPC_DIR ({env.get("LLMQ_IPC_DIR")}) is not its RuntimeDirectory /run/{runtime_dir}')
        # The socket folder systemd would make; a private one, not the machine's /run/llmq.
        ipc_dir = os.path.join(scratch, 'run-' + runtime_dir)
        env['LLMQ_IPC_DIR'] = ipc_dir
        mode = int(service['RuntimeDirectoryMode'][0], 8)

        model = os.path.join(scratch, 'model.gguf')
        subprocess.run([args.make_model, '--out', model, '--dim', '64', '--layers', '2', '--heads', '4',
                        '--kv-heads', '2', '--ffn', '128', '--vocab', '512', '--name', 'installed'],
                       check=True, capture_output=True, timeout=60)
        os.chmod(model, 0o644)
        config = f'[model]\npath = "{model}"\n[log]\nlevel = "info"\n'
        user = group = None
        if args.part == 'second-user':
            user, group = TEST_USER, grp.getgrgid(pwd.getpwnam(TEST_USER).pw_gid).gr_name
            config += f'[ipc]\ngroup = "{group}"\n'
        # As shipped, before the config exists: a usage error (2) naming the file, which the unit
        # does not restart.
        at = command.index('--config') + 1
        shipped = [root + command[0]] + [config_path if i == at else a for i, a in enumerate(command) if i > 0]
        r = subprocess.run(shipped, env=env, capture_output=True, text=True, timeout=30)
        check(r.returncode == 2 and config_path in r.stderr,
              lambda: f'llmqd without its config: exit {r.returncode}, {r.stderr.strip()}')
        check(service.get('RestartPreventExitStatus') == ['2'], 'the unit would restart a daemon that exits 2')
        os.makedirs(os.path.dirname(config_path), exist_ok=True)
        with open(config_path, 'w') as f:
            f.write(config)
        os.chmod(config_path, 0o644)
        os.mkdir(ipc_dir)
        os.chmod(ipc_dir, mode)
        if user:
            shutil.chown(ipc_dir, user, group)

        log = os.path.join(scratch, 'llmqd.log')
        command[0] = root + command[0]
        command[command.index('--config') + 1] = config_path
        print('running as ' + (user or pwd.getpwuid(os.geteuid()).pw_name) + ': ' + shlex.join(command), flush=True)
        with open(log, 'w') as out:
            daemon = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                      user=user, group=group, extra_groups=[] if user else None)
        wait_for(lambda: 'serving' in open(log).read(), 30, 'llmqd to serve', daemon, log)

        client_env = dict(env)
        cli = [expected['the CLI']]
        st = subprocess.run(cli + ['status', '--json'], env=client_env, capture_output=True, text=True, timeout=30)
        check(st.returncode == 0, lambda: f'llmq status failed: {st.stderr}')
        status = json.loads(st.stdout)
        check(status['pid'] == daemon.pid, 'status came from another daemon')
        plugin_dir = os.path.dirname(expected['the gemm plugin'])
        for p in status['plugins']:
            check(os.path.dirname(p['path']) == plugin_dir,
                  f'the installed llmqd loaded {p["path"]}, not the installed plugin in {plugin_dir}')
        print('plugins: ' + ', '.join(p['path'][len(root):] for p in status['plugins']), flush=True)
        g = subprocess.run(cli + ['generate', '--prompt-tokens', '1,2,3', '--max-tokens', '4', '--json'],
                           env=client_env, capture_output=True, text=True, timeout=60)
        check(g.returncode == 0, lambda: f'llmq generate failed: {g.stderr}')
        st_dir = os.stat(ipc_dir)
        if user:
            check(stat.S_IMODE(st_dir.st_mode) == 0o750 and st_dir.st_gid == grp.getgrnam(group).gr_gid,
                  f'[ipc] group = "{group}" left the socket folder {oct(stat.S_IMODE(st_dir.st_mode))}, gid '
                  f'{st_dir.st_gid}')
            check(status['clients'] >= 1, 'no client seen')
            print(f'llmqd ran as {user}; its folder became 0750 group {group}; root\'s client was served', flush=True)
        else:
            check(stat.S_IMODE(st_dir.st_mode) == mode, f'the socket folder is {oct(stat.S_IMODE(st_dir.st_mode))}')
        daemon.send_signal(signal.SIGTERM)
        rc = daemon.wait(timeout=30 * TIME_SCALE)
        daemon = None
        check(rc == 0, f'llmqd exited {rc} on SIGTERM')
        left = os.listdir(ipc_dir)
        check(not left, f'a clean stop left {left} in the socket folder')
        print('the installed service started, served and stopped cleanly', flush=True)
    finally:
        if daemon is not None:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(scratch, ignore_errors=True)
        if created_user:
            subprocess.run(['userdel', TEST_USER], capture_output=True)


if __name__ == '__main__':
    main()
