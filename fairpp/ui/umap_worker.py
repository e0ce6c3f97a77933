"""A long-lived UMAP worker process, so the numba JIT (15-25 s, ~250 MB) stays out of the server process.

:class:`UmapWorker` (the server side) starts it as ``python -P .../umap_worker.py``: run by path, so the worker
never imports :mod:`fairpp.ui` (streamlit). Protocol on stdin/stdout, one request at a time: a JSON header line
``{"n_components": 2, "seed": 0, "nbytes": N}`` followed by N bytes of a ``.npy`` array; the reply is a header
``{"ok": true, "nbytes": N}`` plus the embedding as ``.npy``, or ``{"ok": false, "error": "..."}``.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fairpp.schema import FairppError


def read_array(stream: BinaryIO) -> tuple[dict, np.ndarray | None]:
    """One message: its JSON header and the array after it (``None`` without one)."""
    line = stream.readline()
    if not line:
        raise EOFError
    head = json.loads(line)
    size = int(head.get("nbytes", 0))
    data = stream.read(size) if size else b""
    return head, (np.load(io.BytesIO(data), allow_pickle=False) if size else None)


def write_array(stream: BinaryIO, head: dict, array: np.ndarray | None = None) -> None:
    """Write a JSON header line and, optionally, an array as ``.npy``."""
    data = b""
    if array is not None:
        buf = io.BytesIO()
        np.save(buf, np.asarray(array, dtype=float), allow_pickle=False)
        data = buf.getvalue()
    stream.write((json.dumps({**head, "nbytes": len(data)}) + "\n").encode())
    stream.write(data)
    stream.flush()


class UmapWorker:
    """One long-lived worker process running UMAP (see :mod:`fairpp.ui.umap_worker`).

    The numba JIT (15-25 s and ~250 MB on the first fit) stays out of the server process, and other sessions
    are not held up while a fit runs. Started on the first UMAP request, then kept warm; requests are
    served one at a time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            # Run by path with -P: the worker does not import fairpp.ui (streamlit) and its folder is not on sys.path.
            self._proc = subprocess.Popen([sys.executable, "-P", str(Path(__file__))], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE)
        return self._proc

    def embed(self, x: np.ndarray, *, n_components: int, seed: int) -> np.ndarray:
        """UMAP of ``x`` computed in the worker; raises FairppError with the worker's message."""
        with self._lock:
            proc = self._start()
            try:
                write_array(proc.stdin, {"n_components": n_components, "seed": seed}, x)
                head, emb = read_array(proc.stdout)
            except (EOFError, OSError, ValueError) as exc:
                proc.kill()
                raise FairppError("the UMAP worker process stopped (out of memory?); press the button again") \
                    from exc
        if not head.get("ok"):
            raise FairppError(f"UMAP failed: {head.get('error')}")
        return emb


def main() -> None:
    """Serve UMAP requests until stdin closes."""
    from fairpp.space import umap_embed

    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything a library prints must not corrupt the replies
    while True:
        try:
            head, x = read_array(inp)
        except EOFError:
            return
        try:
            emb = umap_embed(x, n_components=int(head["n_components"]), seed=int(head["seed"]))
        except Exception as exc:  # reported to the parent, which raises it as a FairppError
            write_array(out, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        else:
            write_array(out, {"ok": True}, emb)


if __name__ == "__main__":
    main()
