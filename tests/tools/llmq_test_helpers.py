"""Shared helpers for the command-line tests: run a binary, make a model, parse JSON Lines."""
import json
import os
import subprocess
import sys
import tempfile


def run(cmd, check=True, timeout=300, **kw):
    """Run cmd; return CompletedProcess with text stdout/stderr."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def make_model(maker, path, **opts):
    cmd = [maker, "--out", path]
    for k, v in opts.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            cmd.append(flag)
        elif v is not False and v is not None:
            cmd += [flag, str(v)]
    run(cmd)
    return path


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def tmpdir():
    return tempfile.mkdtemp(prefix="llmq-test-")


class Checks:
    """Collects failures so one run reports every broken behaviour; exits non-zero if any."""

    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
            print(f"ok   {what}")
        else:
            self.failed += 1
            print(f"FAIL {what}")

    def done(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)
