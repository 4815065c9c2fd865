"""The C ABI of libllmq-client (llmq_client.h, API 2) as ctypes declarations.

Every struct here mirrors the header member for member; the tests pin their sizes to the
header's (40, 128 and 80 bytes on LP64).
"""

import ctypes
import ctypes.util
import os

API_MAJOR = 2
IMAGE_TOKEN = -1  # LLMQ_IMAGE_TOKEN: an image's place in a token prompt (API 2.2)

REQUEST_ADD_BOS = 0x1
REQUEST_IGNORE_EOS = 0x2
REQUEST_LOGPROBS = 0x4
REQUEST_SEED_SET = 0x8

EVENT_TOKEN = 1
EVENT_FINAL = 2
EVENT_ERROR = 3

FINISH_REASONS = {1: 'eos', 2: 'length', 3: 'stop', 4: 'cancelled'}
EVENT_ERRORS = {1: 'invalid_request', 2: 'busy', 3: 'shutting_down', 4: 'stalled', 5: 'internal'}
STATUS_TIMEOUT = 5


class ConnectOptions(ctypes.Structure):
    _fields_ = [('struct_size', ctypes.c_uint32), ('api_major', ctypes.c_uint32),
                ('instance', ctypes.c_char_p), ('dir', ctypes.c_char_p), ('client_name', ctypes.c_char_p),
                ('timeout_ms', ctypes.c_uint32), ('spin_us', ctypes.c_uint32)]


class GenerateRequest(ctypes.Structure):
    _fields_ = [('struct_size', ctypes.c_uint32), ('flags', ctypes.c_uint32),
                ('prompt', ctypes.c_char_p), ('prompt_length', ctypes.c_size_t),
                ('prompt_tokens', ctypes.POINTER(ctypes.c_int32)), ('prompt_token_count', ctypes.c_size_t),
                ('stop', ctypes.POINTER(ctypes.c_char_p)), ('stop_count', ctypes.c_size_t),
                ('temperature', ctypes.c_float), ('top_p', ctypes.c_float), ('min_p', ctypes.c_float),
                ('repetition_penalty', ctypes.c_float), ('presence_penalty', ctypes.c_float),
                ('frequency_penalty', ctypes.c_float), ('top_k', ctypes.c_int32),
                ('penalty_last_n', ctypes.c_int32), ('max_tokens', ctypes.c_int32), ('priority', ctypes.c_int32),
                ('seed', ctypes.c_uint64),
                # API 2.1: encoded images (PNG/JPEG bytes) for a vision model.
                ('images', ctypes.POINTER(ctypes.c_void_p)), ('image_sizes', ctypes.POINTER(ctypes.c_size_t)),
                ('image_count', ctypes.c_size_t)]


class Event(ctypes.Structure):
    _fields_ = [('struct_size', ctypes.c_uint32), ('kind', ctypes.c_uint32), ('request_id', ctypes.c_uint64),
                ('token_id', ctypes.c_int32), ('logprob', ctypes.c_float), ('has_logprob', ctypes.c_uint32),
                ('code', ctypes.c_uint32), ('text', ctypes.c_void_p), ('text_length', ctypes.c_size_t),
                ('prompt_tokens', ctypes.c_uint32), ('generated_tokens', ctypes.c_uint32),
                ('queued_us', ctypes.c_uint64), ('prefill_us', ctypes.c_uint64), ('decode_us', ctypes.c_uint64)]


_ERROR = ctypes.c_void_p  # llmq_client_error*, owned by the caller
_CLIENT = ctypes.c_void_p


def _find_library():
    explicit = os.environ.get('LLMQ_CLIENT_LIBRARY')
    if explicit:
        return explicit
    return ctypes.util.find_library('llmq-client') or 'libllmq-client.so.1'


_lib = None


def library():
    """The loaded libllmq-client with its functions' signatures set (loaded on first use)."""
    global _lib
    if _lib is not None:
        return _lib
    name = _find_library()
    try:
        lib = ctypes.CDLL(name)
    except OSError as e:
        raise ImportError(f'llmq: cannot load libllmq-client ({name}): {e}; install llmq (meson install) or set '
                          'LLMQ_CLIENT_LIBRARY to the path of libllmq-client.so') from None
    sig = {
        'llmq_client_api_version': (None, [ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint32)]),
        'llmq_client_error_code': (ctypes.c_int, [_ERROR]),
        'llmq_client_error_message': (ctypes.c_char_p, [_ERROR]),
        'llmq_client_error_delete': (None, [_ERROR]),
        'llmq_client_status_name': (ctypes.c_char_p, [ctypes.c_int]),
        'llmq_client_string_free': (None, [ctypes.c_void_p]),
        'llmq_client_connect': (_ERROR, [ctypes.POINTER(ConnectOptions), ctypes.POINTER(_CLIENT)]),
        'llmq_client_close': (None, [_CLIENT]),
        'llmq_client_submit': (_ERROR, [_CLIENT, ctypes.POINTER(GenerateRequest), ctypes.POINTER(ctypes.c_uint64)]),
        'llmq_client_cancel': (_ERROR, [_CLIENT, ctypes.c_uint64]),
        'llmq_client_next_event': (_ERROR, [_CLIENT, ctypes.c_uint32, ctypes.POINTER(Event)]),
        'llmq_client_control': (_ERROR, [_CLIENT, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint32,
                                         ctypes.POINTER(ctypes.c_void_p)]),
    }
    for fname, (restype, argtypes) in sig.items():
        f = getattr(lib, fname)
        f.restype = restype
        f.argtypes = argtypes
    major, minor = ctypes.c_uint32(), ctypes.c_uint32()
    lib.llmq_client_api_version(ctypes.byref(major), ctypes.byref(minor))
    lib.api_minor = minor.value
    if major.value != API_MAJOR:
        raise ImportError(f'llmq: {name} has client API {major.value}.{minor.value}; this package needs {API_MAJOR}.x')
    _lib = lib
    return lib
