"""Exit 0 if a llama-server binary loads a model and answers /health, else 1.

`--version` is not enough: a binary built for a wider instruction set (AVX-512,
AMX) prints its version on a CPU without it and dies with SIGILL only when it
loads a model. The model is the tests' tiny one, written to a temporary folder.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.tiny_fim_model import main as write_model  # noqa: E402

START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def loads(binary: str) -> bool:
    """True if ``binary`` serves the tiny model."""
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "probe.gguf"
        write_model([str(model)])
        port = _free_port()
        args = [binary, "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-c", "512"]
        server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                if server.poll() is not None:
                    print(
                        f"{binary} exited with {server.returncode} loading a model", file=sys.stderr
                    )
                    return False
                if _healthy(f"http://127.0.0.1:{port}/health"):
                    return True
                time.sleep(0.2)
            print(f"{binary} did not answer /health within {START_TIMEOUT_S} s", file=sys.stderr)
            return False
        finally:
            server.kill()
            server.wait()


if __name__ == "__main__":
    sys.exit(0 if loads(sys.argv[1]) else 1)
