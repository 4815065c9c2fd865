"""llmq: a Python client of llmqd, over libllmq-client's C ABI (standard library only).

    with llmq.Client(instance="default") as client:
        for event in client.generate("Hello", max_tokens=16):
            print(event.text, end="")

A Client is one connection to one llmqd instance (its own shared-memory region); use it from
one thread at a time. generate() returns a Generation: iterate it for TokenEvents; when it ends,
its finish_reason and token counts are set. A vision model (llmqd with [model] vision) takes
images as their file bytes: generate("USER: <image>\nWhat is this? ASSISTANT:", images=[data]).
 Closing a Generation early (close(), leaving its
`with` block, or dropping it) cancels the request in the daemon. Every failure is an LlmqError
carrying the daemon's code and message.
"""

import codecs
import collections
import ctypes
import json

from . import _abi

__all__ = ['Client', 'Generation', 'TokenEvent', 'LlmqError', 'IMAGE_TOKEN']

IMAGE_TOKEN = _abi.IMAGE_TOKEN

TokenEvent = collections.namedtuple('TokenEvent', ['token_id', 'piece', 'text', 'logprob'])
TokenEvent.__doc__ = """One generated token: its id, its bytes (`piece`, which may split a UTF-8
character), the text that became complete with it (`text`, decoded incrementally), and its
log-probability (None unless generate(logprobs=True))."""


class LlmqError(Exception):
    """A failure, with the daemon's or the library's code (e.g. "LLMQ_CLIENT_ERR_NOT_FOUND",
    "invalid_request") and message."""

    def __init__(self, code, message):
        super().__init__(f'{code}: {message}')
        self.code = code
        self.message = message


def _check(lib, error):
    if not error:
        return
    code = lib.llmq_client_error_code(error)
    name = lib.llmq_client_status_name(code).decode()
    message = lib.llmq_client_error_message(error).decode('utf-8', 'replace')
    lib.llmq_client_error_delete(error)
    raise LlmqError(name, message)


def _timeout_ms(seconds):
    return max(0, min(int(seconds * 1000), 0xFFFFFFFF))


class _ClosedOnExit:
    """close() on leaving a `with` block and when garbage-collected."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Client(_ClosedOnExit):
    """A connection to llmqd. instance: its name ("default"); dir: its socket folder (default
    $LLMQ_IPC_DIR, else the user's runtime folder and then /run/llmq); timeout: seconds for
    connecting."""

    def __init__(self, instance=None, dir=None, client_name='llmq-python', timeout=5.0):
        self._lib = _abi.library()
        self._handle = None
        options = _abi.ConnectOptions(ctypes.sizeof(_abi.ConnectOptions), _abi.API_MAJOR,
                                      instance.encode() if instance else None, dir.encode() if dir else None,
                                      client_name.encode(), _timeout_ms(timeout), 0)
        handle = ctypes.c_void_p()
        _check(self._lib, self._lib.llmq_client_connect(ctypes.byref(options), ctypes.byref(handle)))
        self._handle = handle
        self._events = {}    # request id → deque of events read while waiting for another request
        self._open = {}      # request id → Generation still expecting events

    # ---- lifetime ------------------------------------------------------------------------------

    def close(self):
        """Closes the connection; the daemon cancels this client's requests."""
        if self._handle:
            self._lib.llmq_client_close(self._handle)
            self._handle = None

    def _require_open(self):
        if not self._handle:
            raise LlmqError('LLMQ_CLIENT_ERR_INVALID_ARGUMENT', 'the client is closed')

    # ---- control commands ----------------------------------------------------------------------

    def control(self, command, args=None, timeout=10.0):
        """A control command (llmq_client.h lists them); returns its result as a dict."""
        self._require_open()
        out = ctypes.c_void_p()
        args_json = json.dumps(args if args is not None else {}).encode()
        _check(self._lib, self._lib.llmq_client_control(self._handle, command.encode(), args_json,
                                                        _timeout_ms(timeout), ctypes.byref(out)))
        try:
            return json.loads(ctypes.string_at(out.value).decode()) if out.value else None
        finally:
            self._lib.llmq_client_string_free(out)

    def status(self):
        """The daemon's status: model, devices, plan, plugins, clients, requests, KV blocks."""
        return self.control('status')

    def tokenize(self, text, add_bos=True, special=False):
        """The token ids of `text` under the served model's tokenizer."""
        return self.control('tokenize', {'text': text, 'add_bos': add_bos, 'special': special})['tokens']

    # ---- generating ----------------------------------------------------------------------------

    def generate(self, prompt, max_tokens=0, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05,
                 repetition_penalty=1.0, presence_penalty=0.0, frequency_penalty=0.0, penalty_last_n=64,
                 seed=None, stop=(), logprobs=False, add_bos=True, ignore_eos=False, priority=0, images=(),
                 timeout=60.0):
        """Submits a request and returns its Generation. prompt: text, or a list of token ids.
        max_tokens 0 = the daemon's limit; seed None = the daemon picks one; stop: up to 8 strings.
        images: PNG or JPEG file bytes (bytes-like), for a vision model: each at an "<image>" of a
        text prompt (else all before the text), or at an IMAGE_TOKEN of a token prompt; llmqd
        decodes and checks them, and a bad one ends this generation with an LlmqError.
        timeout: the longest wait for any one event, in seconds."""
        self._require_open()
        if isinstance(stop, str):
            stop = [stop]
        flags = (_abi.REQUEST_ADD_BOS if add_bos else 0) | (_abi.REQUEST_IGNORE_EOS if ignore_eos else 0) | \
                (_abi.REQUEST_LOGPROBS if logprobs else 0) | (_abi.REQUEST_SEED_SET if seed is not None else 0)
        req = _abi.GenerateRequest()
        req.struct_size = ctypes.sizeof(_abi.GenerateRequest)
        req.flags = flags
        keep = []  # buffers that must live until submit returns
        if isinstance(prompt, str):
            data = prompt.encode()
            req.prompt = data
            req.prompt_length = len(data)
            keep.append(data)
        else:
            tokens = (ctypes.c_int32 * len(prompt))(*prompt)
            req.prompt_tokens = tokens
            req.prompt_token_count = len(prompt)
            keep.append(tokens)
        images = [bytes(image) for image in images]
        if images:
            if self._lib.api_minor < 1:
                raise LlmqError('LLMQ_CLIENT_ERR_INVALID_ARGUMENT',
                                f'images need libllmq-client API 2.1 or later (this one is 2.{self._lib.api_minor})')
            buffers = [ctypes.create_string_buffer(image, len(image)) for image in images]
            pointers = (ctypes.c_void_p * len(images))(*[ctypes.addressof(b) for b in buffers])
            sizes = (ctypes.c_size_t * len(images))(*[len(image) for image in images])
            req.images = ctypes.cast(pointers, ctypes.POINTER(ctypes.c_void_p))
            req.image_sizes = sizes
            req.image_count = len(images)
            keep.extend([buffers, pointers, sizes])
        encoded_stops = [s.encode() for s in stop]
        stops = (ctypes.c_char_p * max(1, len(encoded_stops)))(*encoded_stops)
        req.stop = stops
        req.stop_count = len(encoded_stops)
        req.temperature, req.top_p, req.min_p = temperature, top_p, min_p
        req.repetition_penalty, req.presence_penalty, req.frequency_penalty = (
            repetition_penalty, presence_penalty, frequency_penalty)
        req.top_k, req.penalty_last_n, req.max_tokens, req.priority = top_k, penalty_last_n, max_tokens, priority
        req.seed = (seed or 0) & 0xFFFFFFFFFFFFFFFF
        request_id = ctypes.c_uint64()
        _check(self._lib, self._lib.llmq_client_submit(self._handle, ctypes.byref(req), ctypes.byref(request_id)))
        generation = Generation(self, request_id.value, timeout)
        self._open[request_id.value] = generation
        return generation

    def _next_event_for(self, request_id, timeout):
        """The next event of one request; events of others are kept for them."""
        queued = self._events.get(request_id)
        if queued:
            return queued.popleft()
        self._require_open()
        event = _abi.Event()
        event.struct_size = ctypes.sizeof(_abi.Event)
        while True:
            _check(self._lib, self._lib.llmq_client_next_event(self._handle, _timeout_ms(timeout), ctypes.byref(event)))
            text = ctypes.string_at(event.text, event.text_length) if event.text else b''
            copy = (event.kind, event.request_id, event.token_id,
                    event.logprob if event.has_logprob else None, event.code, text,
                    event.prompt_tokens, event.generated_tokens, event.queued_us, event.prefill_us, event.decode_us)
            if event.request_id == request_id:
                return copy
            if event.request_id in self._open:
                self._events.setdefault(event.request_id, collections.deque()).append(copy)

    def _forget(self, request_id):
        self._open.pop(request_id, None)
        self._events.pop(request_id, None)


class Generation(_ClosedOnExit):
    """The events of one request: iterate for TokenEvents. After the last one: finish_reason
    ("eos", "length", "stop", "cancelled"), prompt_tokens, generated_tokens and timings (µs).
    close() before the end cancels the request (and waits, briefly, for the daemon to confirm)."""

    def __init__(self, client, request_id, timeout):
        self.client = client
        self.request_id = request_id
        self.timeout = timeout
        self.finish_reason = None
        self.prompt_tokens = None
        self.generated_tokens = None
        self.timings = None
        self._decoder = codecs.getincrementaldecoder('utf-8')('replace')
        self._done = False

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        kind, _, token_id, logprob, code, text, prompt, generated, queued, prefill, decode = \
            self.client._next_event_for(self.request_id, self.timeout)
        if kind == _abi.EVENT_TOKEN:
            return TokenEvent(token_id, text, self._decoder.decode(text), logprob)
        self._done = True
        self.client._forget(self.request_id)
        if kind == _abi.EVENT_ERROR:
            raise LlmqError(_abi.EVENT_ERRORS.get(code, f'error {code}'), text.decode('utf-8', 'replace'))
        self.finish_reason = _abi.FINISH_REASONS.get(code, f'finish {code}')
        self.prompt_tokens, self.generated_tokens = prompt, generated
        self.timings = {'queued_us': queued, 'prefill_us': prefill, 'decode_us': decode}
        raise StopIteration

    def text(self):
        """Reads the rest and returns the generated text."""
        return ''.join(event.text for event in self) + self._decoder.decode(b'', final=True)

    def close(self):
        """Cancels the request if it is still running, and reads to its final event."""
        if self._done or not self.client._handle:
            return
        _check(self.client._lib, self.client._lib.llmq_client_cancel(self.client._handle, self.request_id))
        try:
            for _ in self:
                pass
        except LlmqError:
            pass
