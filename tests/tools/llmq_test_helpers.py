"""Shared helpers for the command-line tests: run a binary, make a model (and a vision projector
and a PNG for it), parse JSON Lines."""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib


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


def make_clip(maker, path, projection_dim=64):
    """A random LLaVA-style clip projector (28 px, 7 px patches: 16 image positions) for a text
    model of width projection_dim."""
    run([maker, "--clip", "--out", path, "--dim", "32", "--heads", "2", "--layers", "3", "--ffn", "64",
         "--image-size", "28", "--patch-size", "7", "--projection-dim", str(projection_dim)])
    return path


def write_png(path, w, h, seed):
    """An 8-bit RGB PNG of a pattern of `seed` at `path`."""
    rows = b"".join(b"\x00" + bytes((x * 7 + y * 13 + seed * 31 + ch * 50) % 256 for x in range(w) for ch in range(3))
                    for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
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


class Daemon:
    """llmqd on `config_text` with its own IPC folder under `folder`, until the with-block ends;
    env is the environment the block's clients need."""

    def __init__(self, llmqd, config_text, folder, timeout=60):
        ipc_dir = os.path.join(folder, "ipc")
        os.makedirs(ipc_dir, mode=0o700)
        self.env = dict(os.environ, LLMQ_IPC_DIR=ipc_dir)
        cfg = os.path.join(folder, "llmqd.toml")
        with open(cfg, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(folder, "llmqd.log")
        self.process = subprocess.Popen([llmqd, "--config", cfg], env=self.env, stdout=open(self.log_path, "w"),
                                        stderr=subprocess.STDOUT)
        import time
        deadline = time.time() + timeout
        while "serving" not in open(self.log_path).read():
            if self.process.poll() is not None or time.time() > deadline:
                self.process.kill()
                raise AssertionError("llmqd did not start:\n" + open(self.log_path).read())
            time.sleep(0.05)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)
        return False
