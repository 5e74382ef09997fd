"""llama.nvim: local LLM fill-in-the-middle completion for Neovim.

Importing this package is cheap (``:UpdateRemotePlugins`` imports it); httpx
and tiktoken are imported only when the plugin starts.
"""

__version__ = "0.1.0"
