"""`llmq chat` with images, as llama.cpp's mtmd-cli users expect: --image PATH goes with the
first message, /image PATH attaches one to the next; the conversation keeps its images (each
turn sends them again with the re-rendered conversation), so the second turn's prompt holds
both. A file that cannot be read, a corrupt image, images past [ipc] max_images and images
for a model without vision are each an error line for that message, the new images dropped,
and the session goes on. Lines come through a pipe (the REPL reads plain lines there).

    chat_images_test.py LLMQ LLMQD MAKE_MODEL
"""
import os
import re
import subprocess
import sys
import time

from llmq_test_helpers import Checks, make_clip, make_model, run, tmpdir, write_png

llmq, llmqd, maker = sys.argv[1:4]
c = Checks()
d = tmpdir()
model = make_model(maker, os.path.join(d, "m.gguf"), dim=64, layers=2, heads=4, kv_heads=2, ffn=128, seed=3)
clip = make_clip(maker, os.path.join(d, "mmproj.gguf"))
a = write_png(os.path.join(d, "a.png"), 40, 25, 1)
b = write_png(os.path.join(d, "b.png"), 40, 25, 2)
bad = os.path.join(d, "bad.png")
with open(bad, "wb") as f:
    f.write(open(a, "rb").read()[:60])

ipc_dir = os.path.join(d, "ipc")
os.makedirs(ipc_dir, mode=0o700)
env = dict(os.environ, LLMQ_IPC_DIR=ipc_dir, HOME=d)
daemons = []


def start(instance, vision):
    cfg = os.path.join(d, instance + ".toml")
    with open(cfg, "w") as f:
        f.write(f'[model]\npath = "{model}"\n' + (f'vision = "{clip}"\n' if vision else "") +
                f'[ipc]\ninstance = "{instance}"\nmax_images = 3\n')
    log = os.path.join(d, instance + ".log")
    p = subprocess.Popen([llmqd, "--config", cfg, "--log-level", "info"], env=env, stdout=open(log, "w"),
                         stderr=subprocess.STDOUT)
    daemons.append(p)
    deadline = time.time() + 60
    while "serving" not in open(log).read():
        if p.poll() is not None or time.time() > deadline:
            raise AssertionError(f"llmqd {instance} did not start:\n" + open(log).read())
        time.sleep(0.05)
    return p, log


def chat(instance, lines, *flags):
    return subprocess.run([llmq, "chat", "--instance", instance, "--max-tokens", "3", "--temp", "0", *flags],
                          input="".join(line + "\n" for line in lines), capture_output=True, text=True, env=env,
                          timeout=120)


def prompt_sizes(log):
    return [int(n) for n in re.findall(r"\): (\d+) prompt \+ \d+ generated tokens", open(log).read())]


try:
    seeing, seeing_log = start("seeing", True)
    plain, plain_log = start("plain", False)

    text_only = chat("seeing", ["what is this?", "/bye"])
    c.check(text_only.returncode == 0, f"a text chat: {text_only.stderr[-300:]}")
    base = prompt_sizes(seeing_log)[-1]
    logged = len(prompt_sizes(seeing_log))

    p = chat("seeing", ["what is this?", "/image " + b, "and this?", "/image " + os.path.join(d, "missing.png"),
                        "/image " + bad, "and now?", "/image " + a, "/image " + a, "two too many?", "still there?",
                        "/bye"],
             "--image", a)
    err = p.stderr
    c.check(p.returncode == 0, f"the session ends with 0: {p.returncode} {err[-400:]}")
    c.check("1 image(s) will go with your first message" in err, f"--image is announced: {err[:300]}")
    c.check(f"(image {b} will go with your next message)" in err, "/image attaches to the next message")
    c.check("missing.png: cannot be read" in err, f"an unreadable file is named: {err[-600:]}")
    c.check(re.search(r"\(error: .*PNG truncated.*the new image\(s\) were dropped\)", err),
            f"a corrupt image is an error for that message: {err[-600:]}")
    c.check(re.search(r"\(error: .*max_images.*the new image\(s\) were dropped\)", err),
            f"a fourth image is past [ipc] max_images: {err[-600:]}")
    sizes = prompt_sizes(seeing_log)[logged:]  # the requests of this session
    served = [n for n in sizes if n > 0]
    c.check(len(served) == 3, f"three messages were answered: {sizes}")
    first, second = served[0], served[1]
    c.check(first >= base + 16, f"the first message holds the --image ({first} vs {base} without)")
    c.check(second >= first + 16 + 3, f"the second turn holds both images and the first exchange ({second} vs {first})")
    c.check(served[-1] > second, f"after the refusals the conversation goes on with its two images ({served})")

    p = chat("plain", ["what is this?", "hello", "/bye"], "--image", a)
    c.check(p.returncode == 0 and re.search(r"\(error: .*no vision projector.*dropped\)", p.stderr),
            f"a model without vision says so, for that message: {p.stderr[-400:]}")
    c.check(len(prompt_sizes(plain_log)) >= 1, "and the next message is answered")
    c.check(seeing.poll() is None and plain.poll() is None, "both daemons serve on")
    help_text = run([llmq, "chat", "--help"]).stdout
    c.check("--image" in help_text and "/image PATH" in help_text, "--help names --image and /image")
finally:
    for p in daemons:
        p.terminate()
        p.wait(timeout=30)
c.done()
