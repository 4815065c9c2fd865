"""llmq-gateway against a real llmqd.

--part http: curl's view of the SSE framing, plain and streamed completions, every refusal
(malformed JSON, wrong types, huge numbers, n > 1, unknown model/route/method, body and header
limits, a slow sender, too many streams, missing or wrong bearer token), and a client that
disconnects mid-stream (llmqd counts the request cancelled and frees its blocks at once).
--part promtool: /metrics after some traffic passes `promtool check metrics` and holds every
family an operator watches. --part sdk: the official `openai` npm package as the client
(gateway_openai_sdk.mjs); exit 77 when node or the package cannot be had. --part vision: chat
messages with image_url parts (base64 data URLs) against a LLaVA-style model: the image and its
place change what the model sees, the same request gives the same answer, streamed through curl
too; every bad image part (http URL, bad base64, other media type, a corrupt or non-image file,
too many images or bytes for llmqd's [ipc] limits, an over-large body, a model without vision,
an image outside a user message) is an OpenAI-shaped 4xx for that request alone while llmqd and
the gateway serve on; and the openai SDK sends an image (gateway_openai_sdk_vision.mjs) when npm
can install it.
"""

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from integration_harness import Harness, TestFailure, bound, check, png_bytes  # noqa: E402
from gateway_harness import metrics, request, start_gateway, wait_daemon_idle  # noqa: E402

SKIP = 77


def parse_extra(h):
    p = argparse.ArgumentParser()
    p.add_argument('--gateway', required=True)
    p.add_argument('--part', required=True, choices=['http', 'promtool', 'sdk', 'vision'])
    p.add_argument('--npm-cache', default='')
    return p.parse_args(h.extra_args)


def error_of(status, body, want_status, want_param=None):
    check(status == want_status, lambda: f'expected HTTP {want_status}, got {status}: {body[:300]!r}')
    e = json.loads(body)['error']
    check(isinstance(e['message'], str) and e['message'] and 'type' in e and 'param' in e and 'code' in e,
          f'not the OpenAI error shape: {body!r}')
    if want_param is not None:
        check(e['param'] == want_param, f'param {e["param"]!r}, expected {want_param!r}: {e["message"]}')
    return e


def curl_sse(h, gw, model):
    body = json.dumps({'model': model, 'messages': [{'role': 'user', 'content': 'Hello'}], 'max_tokens': 6,
                       'stream': True, 'stream_options': {'include_usage': True}, 'seed': 3})
    r = subprocess.run(['curl', '-sS', '-N', '-i', '-H', 'Content-Type: application/json', '-d', body,
                        gw.url('/v1/chat/completions')], capture_output=True, timeout=bound(60))
    check(r.returncode == 0, f'curl failed: {r.stderr!r}')
    head, _, events = r.stdout.partition(b'\r\n\r\n')
    check(b'200' in head.split(b'\r\n')[0], f'curl: {head!r}')
    check(b'content-type: text/event-stream' in head.lower(), f'not an event stream: {head!r}')
    check(events.endswith(b'data: [DONE]\n\n'), f'the stream does not end with [DONE]: {events[-200:]!r}')
    frames = events.split(b'\n\n')[:-1]
    check(all(f.startswith(b'data: ') and b'\n' not in f for f in frames), f'bad SSE framing: {events[:400]!r}')
    payloads = [json.loads(f[6:]) for f in frames[:-1]]
    check(payloads[0]['choices'][0]['delta'].get('role') == 'assistant', f'first delta {payloads[0]}')
    check(all(p['object'] == 'chat.completion.chunk' and p['id'] == payloads[0]['id'] for p in payloads), 'chunk ids')
    finals = [p for p in payloads if p['choices'] and p['choices'][0]['finish_reason']]
    check(len(finals) == 1 and finals[0]['choices'][0]['finish_reason'] in ('length', 'stop'), f'finish: {finals}')
    usage = payloads[-1]
    check(usage['choices'] == [] and usage['usage']['completion_tokens'] >= 1, f'usage chunk {usage}')
    text = ''.join(p['choices'][0]['delta'].get('content', '') for p in payloads if p['choices'])
    h.log(f'curl SSE: {len(frames)} frames, text {text!r}, usage {usage["usage"]}')
    return text


def slow_sender(gw, timeout_ms):
    """Half a header, then silence: a 408 after request_timeout_ms, then the connection closes."""
    started = time.monotonic()
    with socket.create_connection(('127.0.0.1', gw.port), timeout=bound(10)) as s:
        s.sendall(b'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le')
        data = b''
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    took = time.monotonic() - started
    check(data.startswith(b'HTTP/1.1 408'), f'slow sender got {data[:100]!r}')
    check(took < bound(timeout_ms / 1000 + 2), f'slow sender cut off after {took:.2f} s')


def disconnect_mid_stream(h, daemon, gw, model):
    """A streaming client that leaves after its first token: cancelled in llmqd at once."""
    _, before = metrics(gw)
    body = json.dumps({'model': model, 'prompt': 'Once upon a time', 'max_tokens': 1000, 'stream': True, 'ignore_eos': True}).encode()
    s = socket.create_connection(('127.0.0.1', gw.port), timeout=bound(30))
    s.sendall(b'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
              b'Content-Length: %d\r\n\r\n' % len(body) + body)
    got = b''
    while b'data: ' not in got:
        chunk = s.recv(4096)
        check(chunk, 'the stream closed before its first token')
        got += chunk
    check(h.status(daemon.instance)['requests']['running'] == 1, 'the request is not running in llmqd')
    left = time.monotonic()
    s.close()
    wait_daemon_idle(h, daemon, timeout=1)
    took = time.monotonic() - left
    _, after = metrics(gw)
    key = 'llmq_requests_total{outcome="cancelled"}'
    check(after[key] == before[key] + 1, f'llmqd counted {after[key] - before[key]} cancellations, expected 1')
    check(after['llmq_gateway_cancelled_by_disconnect_total'] == before['llmq_gateway_cancelled_by_disconnect_total'] + 1,
          'the gateway did not count the disconnect')
    h.log(f'disconnect: llmqd idle {took * 1000:.0f} ms after the client left; counted cancelled')


def stalled_reader(h, daemon, gw, model):
    """A streaming client that stops reading (a tiny receive buffer, never read): once a write
    has waited request_timeout_ms the gateway drops it and cancels the request in llmqd."""
    _, before = metrics(gw)
    body = json.dumps({'model': model, 'prompt': 'Once', 'max_tokens': 2000, 'stream': True, 'ignore_eos': True}).encode()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.connect(('127.0.0.1', gw.port))
    s.sendall(b'POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret-one\r\n'
              b'Content-Length: %d\r\n\r\n' % len(body) + body)
    started = time.monotonic()
    wait_daemon_idle(h, daemon, timeout=40)
    took = time.monotonic() - started
    _, after = metrics(gw)
    s.close()
    key = 'llmq_requests_total{outcome="cancelled"}'
    check(after[key] == before[key] + 1,
          f'the stalled stream was not cancelled (cancelled {before[key]} -> {after[key]}, took {took:.1f} s)')
    h.log(f'stalled reader: cancelled in llmqd {took:.2f} s after it stopped reading')


def part_http(h, extra, daemon, model):
    gw = start_gateway(h, extra.gateway)
    status, _, body = request(gw, 'GET', '/health')
    check(status == 200 and json.loads(body)['status'] == 'ok', f'/health: {status} {body!r}')
    status, _, body = request(gw, 'GET', '/v1/models')
    check(status == 200 and json.loads(body)['data'][0]['id'] == model, f'/v1/models: {body!r}')

    if shutil.which('curl'):
        curl_sse(h, gw, model)
    else:
        h.log('curl not installed: SSE framing checked through raw sockets only')

    # A plain completion, with the sampled tokens' log-probabilities.
    status, _, body = request(gw, 'POST', '/v1/completions',
                              {'model': model, 'prompt': 'Hello', 'max_tokens': 5, 'logprobs': 0, 'seed': 7,
                               'temperature': 0})
    check(status == 200, f'completion: {status} {body!r}')
    c = json.loads(body)
    check(c['object'] == 'text_completion' and c['usage']['completion_tokens'] == 5, f'completion {c}')
    check(c['choices'][0]['finish_reason'] == 'length', f'finish {c["choices"][0]}')
    check(len(c['choices'][0]['logprobs']['token_logprobs']) == 5, 'logprobs missing')
    check(''.join(c['choices'][0]['logprobs']['tokens']) == c['choices'][0]['text'], 'logprob tokens != text')
    # Greedy twice: the same text (the gateway passes temperature through).
    status, _, body2 = request(gw, 'POST', '/v1/completions',
                               {'model': model, 'prompt': 'Hello', 'max_tokens': 5, 'temperature': 0})
    check(json.loads(body2)['choices'][0]['text'] == c['choices'][0]['text'], 'greedy completions differ')
    # A stop string ends it with finish_reason "stop" and leaves the stop text out.
    stop = c['choices'][0]['text'][2:4]
    if stop.strip():
        status, _, body = request(gw, 'POST', '/v1/completions',
                                  {'model': model, 'prompt': 'Hello', 'max_tokens': 5, 'temperature': 0, 'stop': [stop]})
        s = json.loads(body)['choices'][0]
        check(s['finish_reason'] == 'stop' and stop not in s['text'], f'stop {stop!r}: {s}')

    # Refusals: each a 4xx in the OpenAI shape, naming the field.
    chat = {'model': model, 'messages': [{'role': 'user', 'content': 'Hi'}]}
    cases = [
        (b'{"model": "x", "prompt": ', 400, None),
        ({**chat, 'temperature': 'hot'}, 400, 'temperature'),
        ({**chat, 'temperature': 7}, 400, 'temperature'),
        ({**chat, 'max_tokens': 1e300}, 400, 'max_tokens'),
        ({**chat, 'max_tokens': 123456789012345678901234567890}, 400, 'max_tokens'),
        ({**chat, 'max_tokens': -1}, 400, 'max_tokens'),
        ({**chat, 'seed': 1.5}, 400, 'seed'),
        ({**chat, 'n': 2}, 400, 'n'),
        ({**chat, 'top_logprobs': 3, 'logprobs': True}, 400, 'top_logprobs'),
        ({**chat, 'stop': [1, 2]}, 400, 'stop'),
        ({'model': model, 'messages': []}, 400, 'messages'),
        ({'model': model, 'messages': [{'role': 'wizard', 'content': 'x'}]}, 400, 'messages[0].role'),
        ({'model': model, 'messages': [{'role': 'user', 'content': 5}]}, 400, 'messages[0].content'),
        ({'messages': [{'role': 'user', 'content': 'x'}]}, 400, 'model'),
        ({**chat, 'model': 'gpt-4'}, 404, 'model'),
        (b'[' * 100000, 400, None),
        (b'[]', 400, 'body'),
    ]
    for body, want, param in cases:
        status, _, answer = request(gw, 'POST', '/v1/chat/completions', body)
        error_of(status, answer, want, param)
    error_of(*request(gw, 'POST', '/v1/completions', {'model': model, 'prompt': ['a', 'b']})[::2], 400, 'prompt')
    error_of(*request(gw, 'GET', '/v1/nothing')[::2], 404)
    error_of(*request(gw, 'GET', '/v1/chat/completions')[::2], 405)
    error_of(*request(gw, 'POST', '/v1/completions', b'{"a": "' + b'x' * (13 << 20) + b'"}')[::2], 413)
    error_of(*request(gw, 'GET', '/health', headers={'X-Big': 'y' * 40000})[::2], 431)
    # A request llmqd itself refuses (a token id beyond the vocabulary) is a 400 too, streamed or not.
    for stream in (False, True):
        status, _, answer = request(gw, 'POST', '/v1/completions',
                                    {'model': model, 'prompt': [10 ** 9], 'max_tokens': 2, 'stream': stream})
        e = error_of(status, answer, 400)
        h.log(f'llmqd refused a bad token id (stream={stream}): {e["message"]}')
    check(daemon.alive(), 'llmqd died')

    disconnect_mid_stream(h, daemon, gw, model)

    # A second gateway from a config file: a short request timeout, one stream, bearer tokens.
    keys = h.path('keys.txt')
    with open(keys, 'w') as f:
        f.write('# tokens\nsecret-one\n\nsecret-two\n')
    gw2 = start_gateway(h, extra.gateway, config=f'[gateway]\nrequest_timeout_ms = 500\nmax_streams = 1\n'
                                                f'api_keys_file = "{keys}"\n')
    error_of(*request(gw2, 'GET', '/v1/models')[::2], 401)
    error_of(*request(gw2, 'GET', '/v1/models', headers={'Authorization': 'Bearer wrong'})[::2], 401)
    status, _, _ = request(gw2, 'GET', '/v1/models', headers={'Authorization': 'Bearer secret-two'})
    check(status == 200, f'a listed key was refused: {status}')
    check(request(gw2, 'GET', '/health')[0] == 200, '/health needs no key')
    slow_sender(gw2, 500)
    # max_streams = 1: a second generation while one runs gets 429.
    auth = {'Authorization': 'Bearer secret-one'}
    body = json.dumps({'model': model, 'prompt': 'Once', 'max_tokens': 1000, 'stream': True, 'ignore_eos': True}).encode()
    s = socket.create_connection(('127.0.0.1', gw2.port), timeout=bound(30))
    s.sendall(b'POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret-one\r\n'
              b'Content-Length: %d\r\n\r\n' % len(body) + body)
    got = b''
    while b'data: ' not in got:
        got += s.recv(4096)
    status, _, answer = request(gw2, 'POST', '/v1/completions', {'model': model, 'prompt': 'x', 'max_tokens': 1},
                                headers=auth)
    error_of(status, answer, 429)
    s.close()
    wait_daemon_idle(h, daemon, timeout=1)
    stalled_reader(h, daemon, gw2, model)
    # A bad config key is refused with file, line and key.
    bad = h.path('bad-gateway.toml')
    with open(bad, 'w') as f:
        f.write('[gateway]\nport = 8080\nmax_stream = 3\n')
    r = subprocess.run([extra.gateway, '--config', bad], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and f'{bad}:3' in r.stderr and 'max_stream' in r.stderr, f'bad config: {r.stderr!r}')
    check(daemon.alive() and gw.process.poll() is None and gw2.process.poll() is None, 'a process died')


def part_promtool(h, extra, daemon, model):
    promtool = shutil.which('promtool')
    if not promtool:
        print('SKIP: promtool (Debian package prometheus) is not installed')
        sys.exit(SKIP)
    gw = start_gateway(h, extra.gateway)
    for stream in (False, True):
        request(gw, 'POST', '/v1/completions', {'model': model, 'prompt': 'Hi', 'max_tokens': 4, 'stream': stream})
    request(gw, 'POST', '/v1/completions', {'model': model, 'prompt': 'Hi', 'max_tokens': 'many'})
    text, values = metrics(gw)
    r = subprocess.run([promtool, 'check', 'metrics'], input=text, capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f'promtool check metrics failed: {r.stdout}{r.stderr}')
    for name in ['llmq_up', 'llmq_requests_total{outcome="length"}', 'llmq_prompt_tokens_total',
                 'llmq_generated_tokens_total', 'llmq_time_to_first_token_seconds_count',
                 'llmq_time_per_output_token_seconds_count', 'llmq_queue_depth', 'llmq_running_sequences',
                 'llmq_kv_blocks_used', 'llmq_kv_blocks_free', 'llmq_preemptions_total', 'llmq_plugin_swaps_total',
                 'llmq_client_connections', 'llmq_gateway_connections']:
        check(name in values, f'/metrics lacks {name}')
    check(values['llmq_up'] == 1 and values['llmq_requests_total{outcome="length"}'] == 2, 'request counts')
    check(values['llmq_generated_tokens_total'] == 8, f'generated tokens {values["llmq_generated_tokens_total"]}')
    check(values['llmq_time_to_first_token_seconds_count'] == 2, 'TTFT histogram count')
    check(any(k.startswith('llmq_device_memory_used_bytes{device=') for k in values), 'device memory')
    check(any(k.startswith('llmq_plugin_calls_total{kind="gemm"') and v > 0 for k, v in values.items()), 'plugin calls')
    check(values['llmq_gateway_http_requests_total{route="/v1/completions",code="400"}'] == 1, 'gateway 400 count')
    h.log(f'promtool passed on {len(text.splitlines())} lines')

    # llmqd's own endpoint ([metrics] listen, port 0: the log names the port) serves the same
    # families without a gateway.
    d2 = h.start_daemon(h.make_model('gwmodel2'), instance='second', sections={'metrics': {'listen': '127.0.0.1:0'}})
    line = next(l for l in d2.log().splitlines() if 'Prometheus metrics at http://' in l)
    url = line.split('Prometheus metrics at ', 1)[1].strip()
    port = int(url.split(':')[2].split('/')[0])

    class Endpoint:
        pass
    ep = Endpoint()
    ep.port = port
    text2, values2 = metrics(ep)
    r = subprocess.run([promtool, 'check', 'metrics'], input=text2, capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f'promtool on llmqd\'s endpoint: {r.stdout}{r.stderr}')
    check(values2['llmq_up'] == 1 and 'llmq_kv_blocks_free' in values2 and 'llmq_requests_total{outcome="eos"}' in values2,
          'llmqd\'s endpoint lacks families')
    check(request(ep, 'GET', '/other')[0] == 404 and request(ep, 'POST', '/metrics')[0] == 405, 'endpoint routes')
    h.log(f'llmqd [metrics] listen at {url}: promtool passed')
    # A bad [metrics] listen is a config error naming the key.
    bad = h.start_daemon(h.path('gwmodel.gguf'), instance='third', sections={'metrics': {'listen': 'nowhere'}}, wait=False)
    check(bad.wait(30) != 0 and '[metrics] listen' in bad.log(), f'bad listen: {bad.log()[-500:]}')


def openai_sdk(extra, h):
    """(node, the npm folder holding the openai package), or a reason it cannot be had."""
    node = shutil.which('node')
    npm = shutil.which('npm')
    if not node or not npm:
        return None, 'node/npm not installed'
    folder = extra.npm_cache or h.path('npm')
    os.makedirs(folder, exist_ok=True)
    if not os.path.isfile(os.path.join(folder, 'node_modules', 'openai', 'package.json')):
        try:
            r = subprocess.run([npm, 'install', '--no-audit', '--no-fund', '--prefix', folder, 'openai@4'],
                               capture_output=True, text=True, timeout=150)
        except subprocess.TimeoutExpired:
            return None, 'npm install openai took over 150 s (no registry?)'
        if r.returncode != 0:
            return None, f'npm install openai failed (no registry?): {r.stderr[-500:]}'
    return (node, folder), ''


def run_sdk_script(h, sdk, name, gw, model, extra_env=None):
    """Runs one of the SDK scripts against `gw`; returns its JSON line of results."""
    node, folder = sdk
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    env = dict(h.env, NODE_PATH=os.path.join(folder, 'node_modules'), LLMQ_GATEWAY_URL=gw.url('/v1'),
               LLMQ_MODEL=model, **(extra_env or {}))
    # ESM ignores NODE_PATH: run the script from a copy inside the npm folder.
    runner = os.path.join(folder, name)
    shutil.copyfile(script, runner)
    r = subprocess.run([node, runner], capture_output=True, text=True, timeout=bound(120), env=env)
    check(r.returncode == 0, f'the openai SDK script {name} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}')
    return json.loads(r.stdout.strip().splitlines()[-1])


def part_sdk(h, extra, daemon, model):
    sdk, why = openai_sdk(extra, h)
    if not sdk:
        print(f'SKIP: {why}')
        sys.exit(SKIP)
    gw = start_gateway(h, extra.gateway)
    _, before = metrics(gw)
    results = run_sdk_script(h, sdk, 'gateway_openai_sdk.mjs', gw, model)
    h.log(f'openai SDK: {results}')
    wait_daemon_idle(h, daemon, timeout=1)
    _, after = metrics(gw)
    key = 'llmq_requests_total{outcome="cancelled"}'
    check(after[key] >= before[key] + 1, 'llmqd did not count the aborted stream as cancelled')


def data_url(data, media='image/png'):
    return f'data:{media};base64,' + base64.b64encode(data).decode()


def image_part(data, media='image/png'):
    return {'type': 'image_url', 'image_url': {'url': data_url(data, media)}}


def part_vision(h, extra, daemon, text_model):
    """Images in chat messages (see the module comment). `daemon` serves a text-only model."""
    vision_model = h.make_model('gwvision')
    clip = h.make_clip('gwvision-mmproj')
    seeing = h.start_daemon(vision_model, instance='seeing',
                            sections={'model': {'vision': clip}, 'ipc': {'max_images': 2, 'max_image_bytes': 100000}})
    model = h.status('seeing')['model']['name']
    check(h.status('seeing')['model']['vision']['max_images'] == 2, 'status shows the vision limits')
    gw = start_gateway(h, extra.gateway, '--instance', 'seeing')
    a, b = png_bytes(40, 25, 1), png_bytes(40, 25, 2)
    path = '/v1/chat/completions'

    def ask(content, want=200, **fields):
        body = {'model': model, 'messages': [{'role': 'user', 'content': content}], 'max_tokens': 6,
                'temperature': 0, 'logprobs': True, **fields}
        status, _, answer = request(gw, 'POST', path, body)
        if want != 200:
            return error_of(status, answer, want)
        check(status == 200, lambda: f'image chat: {status} {answer[:400]!r}')
        r = json.loads(answer)
        lp = [t['logprob'] for t in r['choices'][0]['logprobs']['content']]
        return r['choices'][0]['message']['content'], lp, r['usage']['prompt_tokens']

    text_only = ask('Describe the picture')
    first = ask([{'type': 'text', 'text': 'Describe the picture'}, image_part(a)])
    check(first[2] >= text_only[2] + 16, f'the prompt holds the image\'s 16 positions ({first[2]} vs {text_only[2]})')
    check(ask([{'type': 'text', 'text': 'Describe the picture'}, image_part(a)]) == first,
          'the same image request gives the same answer')
    other = ask([{'type': 'text', 'text': 'Describe the picture'}, image_part(b)])
    check(other[1] != first[1], 'another image gives other log-probabilities')
    before = ask([image_part(a), {'type': 'text', 'text': 'Describe the picture'}])
    check(before[1] != first[1], 'the image before the text is another prompt than after it')
    two = ask([image_part(a), {'type': 'text', 'text': 'and'}, image_part(b)])
    check(two[2] >= 32, f'two images take 32 positions ({two[2]})')
    h.log(f'image chat: {first}; other image {other[1][:2]}; image first {before[1][:2]}')

    if shutil.which('curl'):
        body = json.dumps({'model': model, 'messages': [{'role': 'user', 'content': [
            {'type': 'text', 'text': 'What is this?'}, image_part(a)]}], 'max_tokens': 4, 'stream': True})
        body_file = h.path('image-chat.json')
        with open(body_file, 'w') as f:
            f.write(body)
        r = subprocess.run(['curl', '-sS', '-N', '-H', 'Content-Type: application/json', '--data-binary', '@' + body_file,
                            gw.url(path)], capture_output=True, timeout=bound(60))
        check(r.returncode == 0 and r.stdout.endswith(b'data: [DONE]\n\n'), f'curl image stream: {r.stdout[-300:]!r}')

    # Refusals: an OpenAI-shaped 400 for that request, naming the part.
    cut = a[:60]
    cases = [
        ([{'type': 'image_url', 'image_url': {'url': 'https://example.com/cat.png'}}], 'messages[0].content[0].image_url.url',
         'only data URLs'),
        ([{'type': 'text', 'text': 'x'}, {'type': 'image_url', 'image_url': {'url': 'data:image/png;base64,@@@@'}}],
         'messages[0].content[1].image_url.url', 'base64'),
        ([image_part(a, 'image/gif')], 'messages[0].content[0].image_url.url', 'image/png and image/jpeg'),
        ([{'type': 'image_url'}], 'messages[0].content[0].image_url.url', 'string'),
        ([{'type': 'input_audio'}], 'messages[0].content[0].type', 'image_url'),
        ([image_part(a), image_part(a), image_part(b)], 'messages', '[ipc] max_images'),
        ([image_part(png_bytes(200, 200, 0, noise=True))], 'messages', '[ipc] max_image_bytes'),
    ]
    for content, param, words in cases:
        e = ask(content, want=400)
        check(e['param'] == param and words in e['message'], f'{param}: {e}')
    e = error_of(*request(gw, 'POST', path, {'model': model, 'messages': [
        {'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': [image_part(a)]}]})[::2], 400)
    check('user messages only' in e['message'], f'an assistant image: {e}')
    # What only llmqd can tell (the bytes are not a good image) comes back as a 400 too, streamed or not.
    for stream in (False, True):
        for data, words in [(cut, 'PNG truncated'), (b'hello, not an image', 'image')]:
            status, _, answer = request(gw, 'POST', path, {'model': model, 'max_tokens': 3, 'stream': stream,
                                                           'messages': [{'role': 'user', 'content': [image_part(data)]}]})
            e = error_of(status, answer, 400)
            check(words in e['message'], f'a bad image (stream={stream}): {e}')
    # A body over [gateway] max_body_bytes is a 413, before anything is decoded.
    small = start_gateway(h, extra.gateway, '--instance', 'seeing', config='[gateway]\nmax_body_bytes = 4096\n')
    status, _, answer = request(small, 'POST', path, {'model': model, 'messages': [
        {'role': 'user', 'content': [image_part(png_bytes(64, 64, 0, noise=True))]}]})
    error_of(status, answer, 413)
    # A model without a vision projector says so.
    plain = start_gateway(h, extra.gateway)
    status, _, answer = request(plain, 'POST', path, {'model': text_model, 'messages': [
        {'role': 'user', 'content': [{'type': 'text', 'text': 'x'}, image_part(a)]}]})
    e = error_of(status, answer, 400)
    check('takes no images' in e['message'], f'a model without vision: {e}')

    # Everyone else is still served, by the same daemons and gateways.
    check(ask([{'type': 'text', 'text': 'Describe the picture'}, image_part(a)]) == first, 'served on after the refusals')
    check(ask('Describe the picture') == text_only, 'text requests are served on')
    check(seeing.alive() and daemon.alive() and gw.process.poll() is None, 'llmqd and the gateway are alive')
    wait_daemon_idle(h, seeing, timeout=5)

    sdk, why = openai_sdk(extra, h)
    if not sdk:
        h.log(f'the openai SDK part is skipped: {why}')
        return
    with open(h.path('sdk-image.png'), 'wb') as f:
        f.write(a)
    results = run_sdk_script(h, sdk, 'gateway_openai_sdk_vision.mjs', gw, model,
                             {'LLMQ_IMAGE_URL': data_url(a), 'LLMQ_EXPECTED_TEXT': first[0]})
    h.log(f'openai SDK with an image: {results}')


def main():
    with Harness('gateway') as h:
        extra = parse_extra(h)
        model_path = h.make_model('gwmodel')
        daemon = h.start_daemon(model_path)
        model = h.status()['model']['name']
        parts = {'http': part_http, 'promtool': part_promtool, 'sdk': part_sdk, 'vision': part_vision}
        parts[extra.part](h, extra, daemon, model)


if __name__ == '__main__':
    main()
