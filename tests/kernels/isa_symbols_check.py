#!/usr/bin/env python3
"""Fails when an ISA variant's object code defines a global or weak symbol outside its own
namespace (llmq::kernels::<isa>, plus its table accessor llmq::kernels::detail::<isa>_table).

Such a symbol (an inline function or template instantiation compiled with, say, -mavx512f)
could be picked by the linker for code that runs on any CPU, and fault on one without that
ISA. Usage: isa_symbols_check.py NM ISA LIBRARY [ISA LIBRARY ...]
"""
import subprocess
import sys


def offending(nm, isa, library):
    listing = subprocess.run([nm, "-C", "--defined-only", library], check=True,
                             capture_output=True, text=True).stdout
    # DW.ref.* are exception-handling data (a pointer to the C++ personality routine that
    # every object with unwind tables may carry), never code.
    allowed = ("llmq::kernels::%s::" % isa, "llmq::kernels::detail::%s_table()" % isa, "DW.ref.")
    bad = []
    for line in listing.splitlines():
        parts = line.split(None, 2)
        if len(parts) != 3:
            continue  # archive member headers and blank lines
        kind, name = parts[1], parts[2]
        if kind.islower() and kind not in ("u", "v", "w"):
            continue  # local symbol: cannot be merged with anything outside its object
        if not name.startswith(allowed):
            bad.append("%s %s" % (kind, name))
    return bad


def main(argv):
    if len(argv) < 4 or len(argv) % 2 != 0:
        print(__doc__)
        return 2
    nm = argv[1]
    failures = 0
    for isa, library in zip(argv[2::2], argv[3::2]):
        bad = offending(nm, isa, library)
        for symbol in bad:
            print("%s: %s defines a symbol outside llmq::kernels::%s: %s" % (isa, library, isa, symbol))
        failures += len(bad)
        print("%s: %s checked, %d offending symbol(s)" % (isa, library, len(bad)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
