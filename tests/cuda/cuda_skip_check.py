#!/usr/bin/env python3
"""Each GPU test, run with no GPU visible (CUDA_VISIBLE_DEVICES=""), must exit 77 (meson's
skip code) and say why on stdout. Usage: cuda_skip_check.py TEST [TEST ...]
"""
import os
import subprocess
import sys


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    failures = 0
    for test in argv[1:]:
        run = subprocess.run([test], env=env, capture_output=True, text=True, timeout=60)
        said = run.stdout.strip()
        if run.returncode != 77 or not said.startswith("SKIP: no GPU found ("):
            print("%s: exit %d, stdout %r; expected 77 and 'SKIP: no GPU found (...)'"
                  % (test, run.returncode, said[:300]))
            failures += 1
        else:
            print("%s: %s" % (os.path.basename(test), said))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
