"""Images through the llmq Python package (python/llmq) against a real llmqd serving a random
LLaVA-style model (a random Llama and a random clip projector of its width), with Debian's
/usr/bin/python3.

generate(prompt, images=[bytes]) gives the tokens `llmq run --vision --image` gives in-process;
another image gives other tokens or log-probabilities; a token prompt from the chat_template
command with an image part (llmq.IMAGE_TOKEN where the image goes) is served; a truncated PNG,
bytes that are no image, more images than [ipc] max_images and images without a marker's
worth of agreement are each an LlmqError for that generation alone, and the same client and
daemon serve the next request.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))
from integration_harness import Harness, TestFailure, check, last_json_line, png_bytes  # noqa: E402
from python_client_setup import import_llmq  # noqa: E402


def refused(client, words, *args, **kwargs):
    try:
        client.generate(*args, **kwargs).text()
    except Exception as e:  # noqa: BLE001 - checked below
        import llmq
        check(isinstance(e, llmq.LlmqError) and e.code == 'invalid_request' and words in e.message,
              f'expected an invalid_request naming {words!r}, got {e!r}')
        return e
    raise TestFailure(f'a request that should fail ({words}) was served')


def main():
    with Harness('python_client_images') as h:
        llmq, _ = import_llmq(h)
        model = h.make_model('pyvision')
        clip = h.make_clip('pyvision-mmproj')
        a, b = png_bytes(40, 25, 1), png_bytes(40, 25, 2)
        a_path = h.path('a.png')
        with open(a_path, 'wb') as f:
            f.write(a)
        prompt = 'USER: <image>\nDescribe it. ASSISTANT:'
        ref = last_json_line(h.llmq('run', '--model', model, '--vision', clip, '--image', a_path, '--prompt', prompt,
                                    '--max-tokens', '8', '--temperature', '0', '--json', timeout=120).stdout)
        daemon = h.start_daemon(model, sections={'model': {'vision': clip}, 'ipc': {'max_images': 2}})
        with llmq.Client() as client:
            check(client.status()['model']['vision']['tokens_per_image'] == 16, 'status names the image positions')
            with client.generate(prompt, images=[a], max_tokens=8, temperature=0, logprobs=True) as g:
                events = list(g)
            tokens = [e.token_id for e in events]
            check(tokens == ref['tokens'], f'images through Python: {tokens} != llmq run {ref["tokens"]}')
            check(g.prompt_tokens == len(ref['prompt_tokens']) and g.prompt_tokens > 16,
                  f'the prompt holds the image ({g.prompt_tokens} vs {len(ref["prompt_tokens"])})')
            other = list(client.generate(prompt, images=[bytearray(b)], max_tokens=8, temperature=0, logprobs=True))
            check([(e.token_id, e.logprob) for e in other] != [(e.token_id, e.logprob) for e in events],
                  'another image changes what the model sees')

            # A token prompt with an image mark, as the chat_template command renders image parts.
            rendered = client.control('chat_template', {'messages': [
                {'role': 'user', 'content': [{'type': 'text', 'text': 'Describe it.'}, {'type': 'image'}]}]})
            check(rendered['images'] == 1 and rendered['tokens'].count(llmq.IMAGE_TOKEN) == 1 and '<image>' in rendered['text'],
                  f'chat_template with an image part: {rendered}')
            g = client.generate(rendered['tokens'], images=[a], max_tokens=4, temperature=0)
            check(len(g.text()) >= 0 and g.generated_tokens == 4 and g.prompt_tokens == len(rendered['tokens']) + 15,
                  f'a token prompt with an image: {g.generated_tokens} tokens, prompt {g.prompt_tokens}')

            # Bad input: an error for that generation alone.
            refused(client, 'PNG truncated', prompt, images=[a[:60]], max_tokens=2)
            refused(client, 'image', prompt, images=[b'hello, not an image'], max_tokens=2)
            refused(client, 'max_images', 'USER: <image><image><image>', images=[a, a, a], max_tokens=2)
            refused(client, 'marker', prompt, images=[a, b], max_tokens=2)
            refused(client, 'image mark', rendered['tokens'], images=[a, b], max_tokens=2)
            again = [e.token_id for e in client.generate(prompt, images=[a], max_tokens=8, temperature=0)]
            check(again == ref['tokens'], 'the same client is served after the refusals')
            check(len(client.generate('Hello', max_tokens=3, temperature=0).text()) >= 0, 'text requests too')
            check(daemon.alive(), 'llmqd died')


if __name__ == '__main__':
    main()
