"""llmq chat is a REPL on a terminal: driven through a pseudo-terminal against a real llmqd, it
names the chat template at start, edits lines (a cursor move inside the line) and recalls
history (up arrow) through libedit, answers /help, /system, /clear and /bye, says how to leave
on Ctrl-C at the prompt, cancels a reply on Ctrl-C while it streams, and keeps history in its
file.

    chat_repl_test.py LLMQ LLMQD MAKE_MODEL HAVE_LIBEDIT(true|false)
"""

import fcntl
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import time

from llmq_test_helpers import Checks, make_model

TIME_SCALE = float(os.environ.get('LLMQ_TEST_TIME_SCALE', '1'))
PROMPT = '>>> '


class Terminal:
    """One process on a pseudo-terminal; everything it writes is kept in self.seen."""

    def __init__(self, args, env):
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                                        preexec_fn=self._own_terminal, close_fds=True)
        os.close(slave)
        self.seen = ''

    @staticmethod
    def _own_terminal():
        # A session of its own with the pty as its controlling terminal, so that Ctrl-C
        # reaches it as SIGINT, as in a shell.
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    def send(self, text):
        os.write(self.master, text.encode())

    def expect(self, pattern, seconds=20):
        """Waits until `pattern` (a regex) appears after what was already matched; returns the text up to it."""
        deadline = time.monotonic() + seconds * TIME_SCALE
        while True:
            m = re.search(pattern, self.seen)
            if m:
                before, self.seen = self.seen[:m.end()], self.seen[m.end():]
                return before
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f'timed out waiting for {pattern!r}; the terminal shows:\n{self.seen[-2000:]}')
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536).decode(errors='replace')
                except OSError:  # the process closed the terminal
                    time.sleep(0.05)

    def interrupt(self):
        """Ctrl-C as a terminal sends it: SIGINT to the foreground process group."""
        self.send('\x03')

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        os.close(self.master)


def main():
    llmq, llmqd, maker, have_libedit = sys.argv[1:5]
    if have_libedit != 'true':
        print('SKIP: llmq was built without libedit (libedit-dev), so chat has no line editing to test')
        sys.exit(77)
    c = Checks()
    tmp = tempfile.mkdtemp(prefix='llmq-chat-')
    # A long context, so that the reply cancelled below cannot finish before Ctrl-C even where
    # this tiny model decodes at 10k+ tokens/s.
    model = make_model(maker, os.path.join(tmp, 'chat.gguf'), dim=64, layers=2, heads=4, kv_heads=2, ffn=128,
                       vocab=512, context=32768)
    template = os.path.join(tmp, 'plain.jinja')
    with open(template, 'w') as f:
        f.write('{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}'
                '{% if add_generation_prompt %}assistant:{% endif %}')
    env = dict(os.environ, LLMQ_IPC_DIR=os.path.join(tmp, 'ipc'), HOME=tmp, TERM='xterm')
    env.pop('LLMQ_HISTORY_FILE', None)
    os.mkdir(env['LLMQ_IPC_DIR'], 0o700)
    log = open(os.path.join(tmp, 'llmqd.log'), 'w')
    config = os.path.join(tmp, 'llmqd.toml')
    with open(config, 'w') as f:
        f.write(f'[model]\nchat_template = "{template}"\n[scheduler]\nmax_running_sequences = 2\nmax_new_tokens = 32000\n')
    daemon = subprocess.Popen([llmqd, '--model', model, '--config', config, '--log-level', 'info'],
                              env=env, stdout=log, stderr=log)
    term = None
    try:
        deadline = time.monotonic() + 30 * TIME_SCALE
        while subprocess.run([llmq, 'status'], env=env, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline and daemon.poll() is None, 'llmqd did not start'
            time.sleep(0.1)

        term = Terminal([llmq, 'chat', '--max-tokens', '4', '--temp', '0'], env)
        greeting = term.expect(PROMPT)
        c.check(re.search(r'chat template: .*' + re.escape(template), greeting.replace('\r', '')),
                f'the greeting names the template in use: {greeting!r}')
        c.check('/bye' in greeting, 'the greeting says how to leave')

        help_end = r'cancel the reply being written\r?\n' + PROMPT
        term.send('/help\r')
        c.check('/system' in term.expect(help_end), '/help lists the commands')
        # Line editing: "/hep", cursor left, "l" -> "/help" (a terminal without an editor would
        # send the escape sequence as text and the command would be unknown).
        term.send('/hep\x1b[Dl\r')
        out = term.expect(r'(unknown command.*|' + help_end + ')')
        c.check('/clear' in out and 'unknown command' not in out, f'a cursor move edits the line: {out!r}')
        term.send('\x1b[A\r')  # up arrow: the last line again
        c.check('/clear' in term.expect(help_end), 'the up arrow recalls the last line')

        term.interrupt()
        out = term.expect(PROMPT)
        c.check('/bye' in out and 'Ctrl-D' in out, f'Ctrl-C at the prompt says how to leave: {out!r}')
        c.check(term.process.poll() is None, 'Ctrl-C at the prompt does not end the session')

        term.send('hello there\r')
        out = term.expect(PROMPT, 60)
        c.check('(reply cancelled)' not in out, 'a short reply finishes')
        term.send('/sytem\r')
        c.check('did you mean /system' in term.expect(PROMPT), 'an unknown command suggests the close one')
        term.send('/system Be brief.\r')
        c.check('system message set' in term.expect(PROMPT), '/system sets the system message')
        term.send('/clear\r')
        c.check('conversation cleared' in term.expect(PROMPT), '/clear forgets the conversation')
        term.send('/bye\r')
        rc = term.process.wait(timeout=10 * TIME_SCALE)
        c.check(rc == 0, f'/bye leaves with 0 (got {rc})')
        term.close()
        history = open(os.path.join(tmp, '.llmq_history'), errors='replace').read() \
            if os.path.exists(os.path.join(tmp, '.llmq_history')) else ''
        # libedit writes spaces as \\040
        c.check(re.search(r'hello(\\040| )there', history), f'history is kept in ~/.llmq_history: {history[-200:]!r}')

        # A long reply, cancelled by Ctrl-C while it streams; the session goes on.
        term = Terminal([llmq, 'chat', '--max-tokens', '32000', '--ignore-eos', '--temp', '0'], env)
        term.expect(PROMPT)
        term.send('tell me everything\r')
        time.sleep(0.3 * TIME_SCALE)
        term.interrupt()
        out = term.expect(PROMPT, 60)
        c.check('(reply cancelled)' in out, f'Ctrl-C cancels the reply: {out[-300:]!r}')
        c.check(term.process.poll() is None, 'the session goes on after a cancelled reply')
        term.send('\x04')  # Ctrl-D on an empty line
        rc = term.process.wait(timeout=10 * TIME_SCALE)
        c.check(rc == 0, f'Ctrl-D leaves with 0 (got {rc})')
        c.check('finish cancelled' in open(os.path.join(tmp, 'llmqd.log')).read(),
                'the daemon saw the cancellation')

        # A reply the daemon refuses (max_tokens past [scheduler] max_new_tokens) is an error
        # for that reply; the session goes on.
        term = Terminal([llmq, 'chat', '--max-tokens', '40000'], env)
        term.expect(PROMPT)
        term.send('hello\r')
        out = term.expect(PROMPT, 30)
        c.check('(error:' in out and 'max_tokens' in out, f'a refused reply says why: {out[-300:]!r}')
        c.check(term.process.poll() is None, 'the session goes on after a refused reply')
        term.send('/bye\r')
        c.check(term.process.wait(timeout=10 * TIME_SCALE) == 0, '/bye after a refused reply leaves with 0')
    finally:
        if term is not None:
            term.close()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    c.done()


if __name__ == '__main__':
    main()
