// The official OpenAI SDK for Node against llmq-gateway: a streamed chat completion, a plain
// completion, a stream the client aborts after its first chunk, and an invalid request.
// Prints one JSON line of results; exits non-zero on the first mismatch.
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.LLMQ_GATEWAY_URL, apiKey: 'unused', maxRetries: 0 });
const model = process.env.LLMQ_MODEL;
const fail = (message) => { console.error(message); process.exit(1); };
const results = {};

// Streamed chat.
const stream = await client.chat.completions.create({
  model, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' }],
  max_tokens: 8, stream: true, stream_options: { include_usage: true }, seed: 1,
});
let text = '', chunks = 0, finish = null, usage = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  if (chunk.choices.length) {
    text += chunk.choices[0].delta.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
}
if (!usage || usage.completion_tokens < 1 || !['length', 'stop'].includes(finish)) fail(`stream: ${finish} ${JSON.stringify(usage)}`);
results.stream = { chunks, finish, completion_tokens: usage.completion_tokens, text };

// Plain completion.
const completion = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 5, temperature: 0 });
if (completion.object !== 'text_completion' || completion.usage.completion_tokens !== 5) fail(`completion: ${JSON.stringify(completion)}`);
results.completion = { text: completion.choices[0].text, finish: completion.choices[0].finish_reason };

// A stream aborted after its first chunk (ignore_eos, vLLM's extension the SDK passes through: the random test model must not end it first).
const long = await client.completions.create({ model, prompt: 'Once', max_tokens: 1000, stream: true, ignore_eos: true });
let seen = 0;
for await (const chunk of long) {
  seen++;
  if (seen === 1) long.controller.abort();
}
results.aborted_after_chunks = seen;

// An invalid request: the SDK raises BadRequestError with the gateway's message.
try {
  await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], temperature: 9 });
  fail('temperature 9 was accepted');
} catch (e) {
  if (!(e instanceof OpenAI.BadRequestError) || e.status !== 400 || !String(e.message).includes('temperature')) fail(`invalid: ${e}`);
  results.invalid = { status: e.status, message: e.message };
}
console.log(JSON.stringify(results));
