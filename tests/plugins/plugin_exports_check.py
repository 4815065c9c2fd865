#!/usr/bin/env python3
"""Fails unless each plugin's dynamic symbol table defines exactly one symbol, the entry
llmq_plugin_entry (everything else, kernels and C++ templates included, must stay private).
Usage: plugin_exports_check.py NM PLUGIN.so [PLUGIN.so ...]
"""
import subprocess
import sys


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    nm, failures = argv[1], 0
    for plugin in argv[2:]:
        listing = subprocess.run([nm, "-D", "--defined-only", plugin], check=True,
                                 capture_output=True, text=True).stdout
        names = sorted(line.split()[-1] for line in listing.splitlines() if line.strip())
        if names != ["llmq_plugin_entry"]:
            print("%s exports %s, expected only llmq_plugin_entry" % (plugin, names))
            failures += 1
        else:
            print("%s exports only llmq_plugin_entry" % plugin)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
