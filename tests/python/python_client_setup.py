"""What both Python client tests do first: read their two extra flags (--client-lib, the built
libllmq-client.so; --python-dir, the checkout's python/ folder), point the package at that
library and the harness's socket folder, and import it."""

import argparse
import os
import sys


def import_llmq(h):
    """The llmq package of the checkout, on the built client library; returns (llmq, extra flags)."""
    p = argparse.ArgumentParser()
    p.add_argument('--client-lib', required=True)
    p.add_argument('--python-dir', required=True)
    extra = p.parse_args(h.extra_args)
    os.environ['LLMQ_CLIENT_LIBRARY'] = os.path.abspath(extra.client_lib)
    os.environ['LLMQ_IPC_DIR'] = h.ipc_dir
    sys.path.insert(0, os.path.abspath(extra.python_dir))
    import llmq
    return llmq, extra
