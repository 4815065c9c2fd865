"""Every control command llmqd registers (listener.add_command("NAME", ...) anywhere in the
runtime) has its row in the command table of the client header, llmq_client.h, so a C user
learns each one from the header alone.

    control_commands_documented_test.py SOURCE_ROOT
"""

import os
import re
import sys


def main():
    root = sys.argv[1]
    registered = set()
    for folder, _, files in os.walk(os.path.join(root, 'runtime')):
        for name in files:
            if name.endswith(('.cpp', '.hpp')):
                with open(os.path.join(folder, name), errors='replace') as f:
                    registered |= set(re.findall(r'add_command\(\s*"([^"]+)"', f.read()))
    with open(os.path.join(root, 'ipc', 'include', 'llmq', 'llmq_client.h')) as f:
        documented = set(re.findall(r'^ \* \| ([a-z_.]+)\s+\|', f.read(), re.M))
    if len(registered) < 5:
        print(f'FAIL: found only {sorted(registered)} registered; has add_command moved?')
        return 1
    missing = sorted(registered - documented)
    print(f'{len(registered)} commands registered, {len(documented)} in the header\'s table')
    if missing:
        print('FAIL: not documented in llmq_client.h: ' + ', '.join(missing))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
