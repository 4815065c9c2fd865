// The official OpenAI SDK for Node sends an image to llmq-gateway: a chat message with a text
// part and an image_url part (a base64 PNG data URL), greedy, not streamed and streamed; the
// answer must be the one the raw HTTP request got (LLMQ_EXPECTED_TEXT). An http(s) image URL is
// a BadRequestError naming data URLs. Prints one JSON line of results; exits non-zero on the
// first mismatch.
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.LLMQ_GATEWAY_URL, apiKey: 'unused', maxRetries: 0 });
const model = process.env.LLMQ_MODEL;
const url = process.env.LLMQ_IMAGE_URL;
const expected = process.env.LLMQ_EXPECTED_TEXT;
const fail = (message) => { console.error(message); process.exit(1); };
const results = {};
const content = [{ type: 'text', text: 'Describe the picture' }, { type: 'image_url', image_url: { url, detail: 'auto' } }];

const whole = await client.chat.completions.create({
  model, messages: [{ role: 'user', content }], max_tokens: 6, temperature: 0,
});
if (whole.choices[0].message.content !== expected) fail(`image chat: ${JSON.stringify(whole.choices[0])} != ${JSON.stringify(expected)}`);
if (whole.usage.prompt_tokens < 16) fail(`image chat: ${whole.usage.prompt_tokens} prompt tokens`);
results.whole = { text: whole.choices[0].message.content, prompt_tokens: whole.usage.prompt_tokens };

const stream = await client.chat.completions.create({
  model, messages: [{ role: 'user', content }], max_tokens: 6, temperature: 0, stream: true,
});
let text = '';
for await (const chunk of stream) if (chunk.choices.length) text += chunk.choices[0].delta.content ?? '';
if (text !== expected) fail(`streamed image chat: ${JSON.stringify(text)} != ${JSON.stringify(expected)}`);
results.streamed = text;

try {
  await client.chat.completions.create({
    model, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }],
  });
  fail('an https image URL was accepted');
} catch (e) {
  if (!(e instanceof OpenAI.BadRequestError) || e.status !== 400 || !String(e.message).includes('only data URLs')) fail(`https URL: ${e}`);
  results.https_refused = e.message;
}
console.log(JSON.stringify(results));
