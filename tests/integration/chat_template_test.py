"""llmq chat through llmqd renders the chat template in the daemon: [model] chat_template
is used, a client's --chat-template that cannot render is refused with the template line named
while the daemon keeps serving, and a template that refuses the conversation says why."""

import os
import subprocess

from integration_harness import Harness, check


def main():
    with Harness('integration_chat_renders_templates_in_the_daemon', timeout=150) as h:
        root = os.environ['LLMQ_SOURCE_ROOT']
        templates = os.path.join(root, 'tests', 'runtime', 'tokenizer', 'chat_templates')
        model = h.make_model('chat')
        daemon = h.start_daemon(model, {'model': {'chat_template': os.path.join(templates, 'llama2.jinja')}})

        def chat(line, *extra):
            return subprocess.run([h.args.llmq, 'chat', '--max-tokens', '3', '--temperature', '0', *extra],
                                  env=h.env, input=line + '\n', capture_output=True, text=True, timeout=60)

        ok = chat('Hello there </s> friend')
        check(ok.returncode == 0, f'llmq chat failed: {ok.stderr}')

        bad = h.path('bad.jinja')
        with open(bad, 'w') as f:
            f.write('{% for m in messages %}\n{{ m.content | frobnicate }}{% endfor %}')
        r = chat('hi', '--chat-template', bad)
        check(r.returncode != 0, 'a template with an unknown filter was accepted')
        check('chat template line 2' in r.stderr and "unknown filter 'frobnicate'" in r.stderr,
              f'the error does not name the line and the filter: {r.stderr}')

        r = chat('hi', '--chat-template', os.path.join(templates, 'gemma.jinja'), '--system', 'x')
        check(r.returncode != 0 and 'System role not supported' in r.stderr,
              f'the template\'s raise_exception was not reported: {r.stderr}')

        check(daemon.alive(), 'llmqd died after a bad template')
        again = chat('and again', '--chat-template', os.path.join(templates, 'gemma.jinja'))
        check(again.returncode == 0, f'llmq chat failed after the refusals: {again.stderr}')
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
