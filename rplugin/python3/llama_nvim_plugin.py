"""Remote-plugin entry for llama.nvim: only finds the package and exposes the class.

Neovim's Python host adds this folder to sys.path and imports this file. The
``llama_nvim`` package sits two folders up, in the plugin's own checkout, so a
plugin manager's clone works without installing the package; the checkout's
copy wins over a pip-installed one, so the entry and the package always match.
The repository root is on sys.path only while importing, so nothing else from
it (tests, docs) becomes importable.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _import_plugin() -> type:
    if os.path.isfile(os.path.join(_ROOT, "llama_nvim", "__init__.py")):
        sys.path.insert(0, _ROOT)
        try:
            from llama_nvim.plugin import LlamaPlugin
        finally:
            sys.path.remove(_ROOT)
    else:
        from llama_nvim.plugin import LlamaPlugin
    return LlamaPlugin


LlamaPlugin = _import_plugin()
