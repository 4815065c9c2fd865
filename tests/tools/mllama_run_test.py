"""Llama 3.2 Vision (mllama) end to end from one random GGUF holding the text model with its
cross-attention layers and the tiled vision encoder: `llmq run --image` gives the same tokens
every time, on one device, tp=2, pp=2 and tp=2 x pp=2 CPU devices, and through llmqd with
`llmq generate --image`, `llmq run --chat --image` and `--prompt-tokens` with a -1 mark, and in
`llmq chat --image` (same answer; none without the image;
a second image by /image in a later turn); the image matters (other logits); a text-only request skips the
cross-attention layers; a bad image is an error for that request only; and `llmq plan`
counts the tower, the encoder's activations and the image K/V, fitting a 90B-Vision-shaped
header on 4x80GiB and refusing it on 1x80GiB with the bytes."""
import json
import os
import subprocess
import sys

from llmq_test_helpers import Checks, Daemon, json_lines, run, tmpdir, write_png

llmq, maker, llmqd = sys.argv[1], sys.argv[2], sys.argv[3]
c = Checks()
d = tmpdir()
model = os.path.join(d, "mllama.gguf")
run([maker, "--arch", "mllama", "--out", model, "--dim", "64", "--layers", "4", "--heads", "4", "--kv-heads", "2",
     "--ffn", "128", "--vocab", "300", "--cross-layers", "1,3", "--rope-freqs", "--vision-tower", "--vision-dim", "32",
     "--vision-layers", "3", "--vision-heads", "2", "--vision-ffn", "64", "--global-layers", "1", "--max-tiles", "4",
     "--intermediate-layers", "1,2", "--image-size", "28", "--patch-size", "7"])
img_a = write_png(os.path.join(d, "a.png"), 60, 25, 1)  # wide: a 1x2 (or wider) tile grid
img_b = write_png(os.path.join(d, "b.png"), 60, 25, 2)
PROMPT = "<|image|>Describe it"


def generate(image, config=None, extra=(), check=True, prompt=PROMPT):
    cmd = [llmq, "run", "--model", model, "--prompt", prompt, "--max-tokens", "8", "--temperature", "0",
           "--json"] + list(extra)
    if image:
        cmd += ["--image", image]
    if config:
        cmd += ["--config", config]
    return run(cmd, check=check)


first = json_lines(generate(img_a).stdout)[-1]
again = json_lines(generate(img_a).stdout)[-1]
c.check(len(first["tokens"]) == 8 and first["tokens"] == again["tokens"], "the same image gives the same 8 tokens")
c.check(first["prompt_tokens"][1] == 300, f"<|image|> is token 300 after BOS ({first['prompt_tokens'][:3]})")
la, lb, lt = (os.path.join(d, n) for n in ("a.logits", "b.logits", "t.logits"))
generate(img_a, extra=["--logits-out", la])
generate(img_b, extra=["--logits-out", lb])
c.check(open(la, "rb").read() != open(lb, "rb").read(), "another image gives other logits")
text_only = json_lines(generate(None, prompt="Describe it", extra=["--logits-out", lt]).stdout)[-1]
c.check(len(text_only["tokens"]) == 8 and open(lt, "rb").read() != open(la, "rb").read(),
        "a text-only request runs (without the cross-attention layers) and differs from an image's")

for name, body in [("tp2", "[devices]\ncpu = 2\n[parallel]\ntensor = 2\npipeline = 1\n"),
                   ("pp2", "[devices]\ncpu = 2\n[parallel]\ntensor = 1\npipeline = 2\n"),
                   ("tp2pp2", "[devices]\ncpu = 4\n[parallel]\ntensor = 2\npipeline = 2\n")]:
    cfg = os.path.join(d, name + ".toml")
    with open(cfg, "w") as f:
        f.write(body)
    got = json_lines(generate(img_a, cfg).stdout)[-1]["tokens"]
    c.check(got == first["tokens"], f"{name} on CPU devices gives one device's tokens ({got} vs {first['tokens']})")

# llmq run --chat --image: the image part renders as <|image|> where it sits (before the text
# here), so a template that only joins the messages asks what the plain prompt asks.
tpl = os.path.join(d, "join.jinja")
with open(tpl, "w") as f:
    f.write("{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}")
chat_run = json_lines(generate(img_a, prompt="Describe it", extra=["--chat-template", tpl]).stdout)[-1]
c.check(chat_run["prompt_tokens"] == first["prompt_tokens"] and chat_run["tokens"] == first["tokens"],
        f"run --chat --image gives the <|image|> prompt's tokens ({chat_run['prompt_tokens']} vs {first['prompt_tokens']})")
marked = [-1 if t == 300 else t for t in first["prompt_tokens"]]
p = run([llmq, "run", "--model", model, "--prompt-tokens", ",".join(map(str, marked)), "--image", img_a,
         "--max-tokens", "8", "--temperature", "0", "--json"])
c.check(json_lines(p.stdout)[-1]["tokens"] == first["tokens"], "run --prompt-tokens with a -1 where <|image|> goes")

bad = os.path.join(d, "bad.png")
with open(bad, "wb") as f:
    f.write(open(img_a, "rb").read()[:60])
p = generate(bad, check=False)
c.check(p.returncode != 0 and "images[0]: image: PNG truncated" in p.stderr, f"a truncated PNG is refused: {p.stderr[-160:]}")
p = generate(img_a, extra=["--image", img_b], check=False)
c.check(p.returncode != 0 and "<|image|> tokens for 2 images" in p.stderr, f"markers and images must agree: {p.stderr[-160:]}")

with Daemon(llmqd, f'[model]\npath = "{model}"\n[ipc]\nmax_images = 2\n', d) as daemon:
    def client(*args, check=True):
        return run([llmq, "generate", "--prompt", PROMPT, "--max-tokens", "8", "--temperature", "0", "--json"]
                   + list(args), check=check, env=daemon.env)
    served = json_lines(client("--image", img_a).stdout)[-1]
    c.check(served["tokens"] == first["tokens"], f"llmqd gives llmq run's tokens ({served['tokens']})")
    p = client("--image", bad, check=False)
    c.check(p.returncode != 0 and "PNG truncated" in (p.stdout + p.stderr), "a truncated image is an error event")
    again = json_lines(client("--image", img_a).stdout)[-1]
    c.check(again["tokens"] == first["tokens"] and daemon.process.poll() is None, "and the daemon serves the next request")
    # Image K/V are planned for [ipc] max_images (2) images at once: a 2-image request that
    # arrives while another runs waits until it ends, while a text request behind it runs.
    two = "<|image|><|image|>Describe it"
    alone = json_lines(run([llmq, "generate", "--prompt", two, "--image", img_a, "--image", img_b, "--max-tokens", "2",
                            "--temperature", "0", "--json"], env=daemon.env).stdout)[-1]
    long_run = subprocess.Popen([llmq, "generate", "--prompt", two, "--image", img_a, "--image", img_b, "--max-tokens",
                                 "1900", "--temperature", "0", "--json"], env=daemon.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    long_run.stdout.readline()  # its first token: it is running
    waiter = subprocess.Popen([llmq, "generate", "--prompt", two, "--image", img_a, "--image", img_b, "--max-tokens",
                               "2", "--temperature", "0", "--json"], env=daemon.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    text_req = run([llmq, "generate", "--prompt", "Describe it", "--max-tokens", "2", "--temperature", "0", "--json"],
                   env=daemon.env)
    text_done_first = long_run.poll() is None
    waited = json_lines(waiter.communicate(timeout=300)[0])[-1]
    long_out = long_run.communicate(timeout=300)[0]
    long_end = json_lines(long_out)[-1]
    c.check(long_end.get("finish_reason") == "length" and len(long_end["tokens"]) == 1900,
            f"the long image request generates its 1900 tokens ({long_end.get('finish_reason')})")
    c.check(waited["tokens"] == alone["tokens"] and waited["timings"]["queue_ms"] > 0,
            f"the second image request gives its tokens after waiting ({waited['timings']})")
    c.check(waited["timings"]["queue_ms"] >= long_end["timings"]["decode_ms"] / 2,
            f"it waited for the first to end (queued {waited['timings']['queue_ms']:.1f} ms, the first decoded "
            f"for {long_end['timings']['decode_ms']:.1f} ms)")
    c.check(len(json_lines(text_req.stdout)[-1]["tokens"]) == 2 and text_done_first,
            "a text request behind it ran while the long image request was still running")
    # llmq chat: an image part renders as <|image|> where it sits in the user turn, so a chat
    # whose template only joins the messages asks what `generate` asks and answers the same.
    def chat(lines, *flags):
        return run([llmq, "chat", "--chat-template", tpl, "--max-tokens", "8", "--temp", "0", *flags],
                   input="".join(line + "\n" for line in lines), env=daemon.env, check=False)
    said = json_lines(client("--image", img_a).stdout)[-1]["text"]
    p = chat(["Describe it", "/bye"], "--image", img_a)
    c.check(p.returncode == 0 and said.strip() and said.strip() in p.stdout,
            f"llmq chat --image answers as generate --image ({said!r} in {p.stdout!r}; {p.stderr[-300:]})")
    p = chat(["Describe it", "/bye"])
    c.check(p.returncode == 0 and said.strip() not in p.stdout, f"without the image the chat answers otherwise: {p.stdout!r}")
    p = chat(["Describe it", "/image " + img_b, "and this?", "/bye"], "--image", img_a)
    c.check(p.returncode == 0 and "error" not in p.stderr, f"a second image by /image in a later turn: {p.stderr[-300:]}")

big = os.path.join(d, "m90.gguf")
run([maker, "--mllama-preset", "90b", "--out", big])
fit = json.loads(run([llmq, "plan", "--model", big, "--devices", "4x80GiB", "-c", "8192", "--json"]).stdout)
d0, d1 = fit["devices"][0], fit["devices"][1]
c.check(fit["fits"] and fit["tensor"] * fit["pipeline"] == 4, "a 90B-Vision-shaped header plans and fits on 4x80GiB")
c.check(d0["vision_weight_bytes"] > 1 << 30 and d0["vision_activation_bytes"] > 0 and d1["vision_weight_bytes"] == 0,
        f"plan: the vision tower on the first device ({d0['vision_weight_bytes']} bytes)")
# 20 cross layers x 4 images x 4 tiles x 1601 rows x 2 of 8 KV heads x 128 x 4 bytes x (K, V)
want = 20 * 4 * 4 * 1601 * 2 * 128 * 4 * 2
c.check(all(x["image_kv_bytes"] == want for x in fit["devices"]), f"plan: image K/V per device ({d0['image_kv_bytes']} vs {want})")
p = run([llmq, "plan", "--model", big, "--devices", "1x80GiB", "-c", "8192"], check=False)
c.check(p.returncode != 0 and "does not fit" in p.stdout and "of vision tower" in p.stdout and "image K/V" in p.stdout,
        f"1x80GiB is refused naming the bytes: {p.stdout.strip()[-400:]}")
print(run([llmq, "plan", "--model", big, "--devices", "4x80GiB", "-c", "8192"]).stdout)
c.done()
