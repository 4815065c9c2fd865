"""LLaVA-style images end to end through `llmq run --vision MMPROJ --image PATH`: a random Llama
paired with a random clip projector of its embedding size. The image changes what the model
sees (its logits), the same image gives the same tokens, tp=2 and pp=2 on CPU devices give the
tokens of one device, `--chat` places the image where the message's <image> sits (else before
the text) and `--prompt-tokens` at each -1, and a bad image, an image without a projector, or a
projector of another model's size are errors that name the problem."""
import os
import sys

from llmq_test_helpers import Checks, json_lines, make_clip, make_model, run, tmpdir, write_png

llmq, maker, llmqd = sys.argv[1], sys.argv[2], sys.argv[3]
c = Checks()
d = tmpdir()
model = make_model(maker, os.path.join(d, "m.gguf"), dim=64, layers=2, heads=4, kv_heads=2, ffn=128, seed=3)
clip = make_clip(maker, os.path.join(d, "mmproj.gguf"))
other_clip = os.path.join(d, "mmproj48.gguf")
run([maker, "--clip", "--out", other_clip, "--projection-dim", "48"])
img_a = write_png(os.path.join(d, "a.png"), 40, 25, 1)
img_b = write_png(os.path.join(d, "b.png"), 40, 25, 2)


def generate(image, config=None, extra=(), check=True):
    cmd = [llmq, "run", "--model", model, "--vision", clip, "--prompt", "Describe <image> briefly",
           "--max-tokens", "8", "--temperature", "0", "--json"] + list(extra)
    if image:
        cmd += ["--image", image]
    if config:
        cmd += ["--config", config]
    return run(cmd, check=check)


first = json_lines(generate(img_a).stdout)[-1]
again = json_lines(generate(img_a).stdout)[-1]
c.check(len(first["tokens"]) == 8, "an image request generates its 8 tokens")
c.check(first["tokens"] == again["tokens"], "the same image gives the same tokens")
n_prompt = len(first["prompt_tokens"])
c.check(n_prompt > 16, f"the prompt holds the image's 16 positions (prompt of {n_prompt} tokens)")

la, lb = os.path.join(d, "a.logits"), os.path.join(d, "b.logits")
generate(img_a, extra=["--logits-out", la])
generate(img_b, extra=["--logits-out", lb])
c.check(open(la, "rb").read() != open(lb, "rb").read(), "another image gives other logits")

for name, body in [("tp2", "[devices]\ncpu = 2\n[parallel]\ntensor = 2\npipeline = 1\n"),
                   ("pp2", "[devices]\ncpu = 2\n[parallel]\ntensor = 1\npipeline = 2\n")]:
    cfg = os.path.join(d, name + ".toml")
    with open(cfg, "w") as f:
        f.write(body)
    got = json_lines(generate(img_a, cfg).stdout)[-1]["tokens"]
    c.check(got == first["tokens"], f"{name} on CPU devices gives one device's tokens ({got} vs {first['tokens']})")

# --chat with an image: the image part sits at the message's <image> (a template that only joins
# the messages renders what the plain prompt asks), or before the text when there is none.
join = os.path.join(d, "join.jinja")
with open(join, "w") as f:
    f.write("{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}")
chat = json_lines(generate(img_a, extra=["--chat-template", join]).stdout)[-1]
c.check(chat["prompt_tokens"] == first["prompt_tokens"] and chat["tokens"] == first["tokens"],
        f"run --chat --image: the image where <image> sits ({chat['prompt_tokens'][:6]}... vs {first['prompt_tokens'][:6]}...)")
plain_first = json_lines(run([llmq, "run", "--model", model, "--vision", clip, "--prompt", "<image>Describe",
                              "--max-tokens", "4", "--temperature", "0", "--json", "--image", img_a]).stdout)[-1]
chat_first = json_lines(run([llmq, "run", "--model", model, "--vision", clip, "--prompt", "Describe", "--chat",
                             "--chat-template", join, "--max-tokens", "4", "--temperature", "0", "--json",
                             "--image", img_a]).stdout)[-1]
c.check(chat_first["prompt_tokens"] == plain_first["prompt_tokens"] and chat_first["tokens"] == plain_first["tokens"],
        "run --chat --image without <image>: the image goes before the text")
p = generate(img_a, extra=["--chat-template", join, "--image", img_b], check=False)
c.check(p.returncode != 0 and "1 <image> marker(s) for 2 image(s)" in p.stderr, f"--chat: markers and images must agree: {p.stderr[-200:]}")
drop = os.path.join(d, "drop.jinja")
with open(drop, "w") as f:
    f.write("{{ bos_token }}{% for m in messages %}{{ m.role }}{% endfor %}")
p = generate(img_a, extra=["--chat-template", drop], check=False)
c.check(p.returncode != 0 and "rendered 0 of the message's 1 image(s)" in p.stderr,
        f"--chat: a template that drops the message's image is refused: {p.stderr[-200:]}")
# --prompt-tokens with a -1 where the image goes: the text prompt's tokens.
ids, bos = first["prompt_tokens"], first["prompt_tokens"][0]
at = next(i for i in range(1, len(ids)) if ids[i:i + 16] == [bos] * 16)
marked = ids[:at] + [-1] + ids[at + 16:]
p = run([llmq, "run", "--model", model, "--vision", clip, "--prompt-tokens", ",".join(map(str, marked)), "--image",
         img_a, "--max-tokens", "8", "--temperature", "0", "--json"])
c.check(json_lines(p.stdout)[-1]["tokens"] == first["tokens"], "run --prompt-tokens with a -1 mark gives the text's tokens")

bad = os.path.join(d, "bad.png")
with open(bad, "wb") as f:
    f.write(open(img_a, "rb").read()[:60])
p = generate(bad, check=False)
c.check(p.returncode != 0 and "images[0]: image: PNG truncated" in p.stderr,
        f"a truncated PNG is refused naming it: {p.stderr.strip()[-160:]}")
p = run([llmq, "run", "--model", model, "--prompt", "x", "--image", img_a], check=False)
c.check(p.returncode != 0 and "--vision" in p.stderr, "an image without a projector is refused")
p = run([llmq, "run", "--model", model, "--vision", other_clip, "--prompt", "x", "--image", img_a], check=False)
c.check(p.returncode != 0 and "48-value embeddings" in p.stderr, "a projector of another size is refused")
p = generate(img_a, extra=["--image", img_b], check=False)
c.check(p.returncode != 0 and "1 <image> marker(s) for 2 image(s)" in p.stderr, "markers and images must agree")

# Through llmqd: the image bytes travel in the client's shared-memory region; the same tokens
# as `llmq run`; a bad image is an error for that request alone and the daemon serves on.
import subprocess  # noqa: E402
import time  # noqa: E402
ipc_dir = os.path.join(d, "ipc")
os.makedirs(ipc_dir, mode=0o700)
env = dict(os.environ, LLMQ_IPC_DIR=ipc_dir)
cfg = os.path.join(d, "llmqd.toml")
with open(cfg, "w") as f:
    f.write(f'[model]\npath = "{model}"\nvision = "{clip}"\n[ipc]\nmax_images = 2\n')
log_path = os.path.join(d, "llmqd.log")
daemon = subprocess.Popen([llmqd, "--config", cfg], env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
try:
    deadline = time.time() + 60
    while "serving" not in open(log_path).read():
        if daemon.poll() is not None or time.time() > deadline:
            raise AssertionError("llmqd did not start:\n" + open(log_path).read())
        time.sleep(0.05)

    def client(*args, check=True):
        return run([llmq, "generate", "--prompt", "Describe <image> briefly", "--max-tokens", "8", "--temperature", "0",
                    "--json"] + list(args), check=check, env=env)
    st = run([llmq, "status"], env=env).stdout
    c.check("vision: 16 positions an image, up to 2 images" in st, f"llmq status shows the vision limits: {st}")
    served = json_lines(client("--image", img_a).stdout)[-1]
    c.check(served["tokens"] == first["tokens"], f"llmqd gives llmq run's tokens ({served['tokens']})")
    p = client("--image", bad, check=False)
    last = json_lines(p.stdout)[-1] if p.stdout.strip() else {}
    c.check(p.returncode != 0 and "PNG truncated" in (p.stdout + p.stderr),
            f"a truncated image is an error event: {(last.get('error') or p.stderr)[-120:]}")
    p = client("--image", img_a, "--image", img_a, "--image", img_a, check=False)
    c.check(p.returncode != 0 and "max_images" in (p.stdout + p.stderr), "more images than [ipc] max_images are refused")
    # The same prompt as token ids with a -1 where the image goes (as the chat_template command
    # renders image parts): the same tokens as the text with its <image> marker.
    ids, bos = first["prompt_tokens"], first["prompt_tokens"][0]
    at = next(i for i in range(1, len(ids)) if ids[i:i + 16] == [bos] * 16)
    marked = ids[:at] + [-1] + ids[at + 16:]
    p = run([llmq, "generate", "--prompt-tokens", ",".join(map(str, marked)), "--image", img_a, "--max-tokens", "8",
             "--temperature", "0", "--json"], env=env)
    c.check(json_lines(p.stdout)[-1]["tokens"] == first["tokens"], "a token prompt with a -1 mark gives the text's tokens")
    p = run([llmq, "generate", "--prompt-tokens", ",".join(map(str, marked)), "--max-tokens", "2", "--json"], env=env,
            check=False)
    c.check(p.returncode != 0 and "prompt_tokens[" in (p.stdout + p.stderr), "a -1 without an image is refused")
    again = json_lines(client("--image", img_a).stdout)[-1]
    c.check(again["tokens"] == first["tokens"] and daemon.poll() is None, "and the daemon serves the next request")
    text_only = run([llmq, "generate", "--prompt", "Hello", "--max-tokens", "4", "--temperature", "0", "--json"], env=env)
    c.check(len(json_lines(text_only.stdout)[-1]["tokens"]) == 4, "text requests are served beside image ones")
finally:
    daemon.terminate()
    daemon.wait(timeout=30)

# The planner counts the vision tower and the encoder's activations on the first device only.
big = make_model(maker, os.path.join(d, "big.gguf"), dim=4096, layers=32, heads=32, kv_heads=8, ffn=14336, vocab=32000,
                 dtype="f16", header_only=True)
big_clip = os.path.join(d, "big-mmproj.gguf")
run([maker, "--clip", "--out", big_clip, "--dim", "1024", "--layers", "24", "--heads", "16", "--ffn", "4096",
     "--image-size", "336", "--patch-size", "14", "--projection-dim", "4096", "--dtype", "f16", "--patch-f16",
     "--header-only"])
import json  # noqa: E402
plain = json.loads(run([llmq, "plan", "--model", big, "--devices", "2x16GiB", "--tensor", "2", "--json"]).stdout)
seen = json.loads(run([llmq, "plan", "--model", big, "--vision", big_clip, "--devices", "2x16GiB", "--tensor", "2",
                       "--json"]).stdout)
v0, v1 = seen["devices"][0], seen["devices"][1]
# ViT-L/14: 23 of 24 layers of 12.6 M F16 parameters each, plus embeddings and the projector.
c.check(550 << 20 < v0["vision_weight_bytes"] < 650 << 20, f"plan: device 0 holds the vision tower ({v0['vision_weight_bytes']} bytes)")
c.check(v0["vision_activation_bytes"] > 577 * 1024 * 4 * 7, "plan: and the encoder's activations")
c.check(v1["vision_weight_bytes"] == 0 and plain["devices"][0]["vision_weight_bytes"] == 0,
        "plan: no vision bytes on device 1, nor without --vision")
text = run([llmq, "plan", "--model", big, "--vision", big_clip, "--devices", "2x16GiB", "--tensor", "2"]).stdout
c.check("vision tower" in text and "encoder activations" in text, "llmq plan shows them")
p = run([llmq, "plan", "--model", big, "--vision", big, "--devices", "2x16GiB"], check=False)
c.check(p.returncode != 0 and "not a vision projector" in p.stderr, "plan refuses a --vision that is not a projector")
c.done()
