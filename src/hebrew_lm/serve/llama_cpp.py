"""llama.cpp from Python: its converter (a script of its source tree) and its library (the binding
`llama-cpp-python`, which scripts/setup.sh builds from PyPI's source archive).

    converter_dir()                 # .venv/share/hebrew-lm/llama.cpp: convert_hf_to_gguf.py, conversion/, gguf-py/
    quantize(f16_file, out, "q4_k_m")
    llm = load(file); greedy_tokens(llm, ids, 32)

The converter is llama.cpp's own, run in a child process (`hebrew_lm.serve.converter`) so that the
`gguf` package it ships (newer than PyPI's, matched to it) never replaces ours in this process.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

LLAMA_CPP_VERSION = "0.3.36"
"""The llama-cpp-python release whose source archive gives the converter and builds the binding."""

QUANT_TYPES = ("q4_0", "q4_k_s", "q4_k_m", "q5_k_m", "q6_k", "q8_0")
"""What `--quantize` makes from the converted file with llama.cpp's quantizer (k-quants fall back to a
legacy type, per tensor, where a row is not a multiple of 256, as llama.cpp does)."""


def converter_dir() -> Path:
    """llama.cpp's source tree with its converter: $HEBREW_LM_LLAMA_CPP (a llama.cpp checkout of your own), or
    the one scripts/setup.sh unpacks from llama-cpp-python's source archive."""
    folder = Path(os.environ.get("HEBREW_LM_LLAMA_CPP") or Path(sys.prefix) / "share" / "hebrew-lm" / "llama.cpp")
    if not (folder / "convert_hf_to_gguf.py").is_file():
        raise ValueError(f"export gguf: llama.cpp's converter is not in {folder} (no convert_hf_to_gguf.py); "
                         "run `bash scripts/setup.sh`, or point HEBREW_LM_LLAMA_CPP at a llama.cpp checkout")
    return folder


def binding():
    """The `llama_cpp` module, or a one-line error saying how to get it."""
    try:
        import llama_cpp
    except ImportError as e:
        raise ValueError(f"llama.cpp's Python binding is not installed ({e}); scripts/setup.sh builds it "
                         f"(pip install llama-cpp-python=={LLAMA_CPP_VERSION}: cmake and a C++ compiler, ~4 "
                         "minutes on 2 cores)") from None
    return llama_cpp


def has_binding() -> bool:
    try:
        binding()
    except ValueError:
        return False
    return True


def quantize(source: Path, out: Path, kind: str) -> None:
    """`source` (an f32/f16/bf16 GGUF) quantized to `kind` (one of QUANT_TYPES) by llama.cpp's quantizer."""
    import ctypes

    llama_cpp = binding()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind.upper()}")
    params.nthread = os.cpu_count() or 1
    with tempfile.TemporaryFile() as log_file:  # llama.cpp prints a line per tensor: kept for an error only
        with _c_output_to(log_file):
            failed = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params))
        if failed:
            log_file.seek(0)
            tail = log_file.read().decode(errors="replace").strip().splitlines()[-10:]
            raise ValueError(f"export gguf: llama.cpp could not quantize {source} to {kind}:\n" + "\n".join(tail))


@contextlib.contextmanager
def _c_output_to(file):
    """The process's stdout and stderr file descriptors (what C code writes to) sent to `file` for a while."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def load(file: Path, n_ctx: int = 2048, logits_all: bool = False):
    """A `llama_cpp.Llama` on a GGUF file, quietly, on every core.

    Call `reset()` on it before each completion: the binding reuses the state of the longest prefix its
    last call shares with the next, which a recurrent layer (NemotronH's Mamba-2) cannot rewind, so a
    later completion would continue from the wrong state (measured here: another answer than a fresh load
    gives). After `reset()` the whole prompt is evaluated again."""
    llama_cpp = binding()
    return llama_cpp.Llama(model_path=str(file), n_ctx=n_ctx, n_batch=min(n_ctx, 512), logits_all=logits_all,
                           n_threads=os.cpu_count() or 1, verbose=False, seed=0)


def greedy_tokens(llm, prompt: list[int], new_tokens: int) -> list[int]:
    """The `new_tokens` tokens greedy decoding appends to `prompt`: the argmax of llama.cpp's logits each
    step (no sampler in the way), through end tokens too, so two engines compare on the same length."""
    import numpy as np

    if not llm._logits_all:  # without it the binding keeps no logits to read
        raise ValueError("greedy_tokens: load the file with logits_all=True")
    llm.reset()
    llm.eval(prompt)
    out: list[int] = []
    for _ in range(new_tokens):
        out.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
        llm.eval(out[-1:])
    return out


def bits_per_byte(llm, texts: list[str]) -> float:
    """Total negative log-likelihood of `texts` (each with the model's BOS when it adds one, the same
    windows as `transformers` sees them), in bits per UTF-8 byte."""
    import math

    import numpy as np

    nats, nbytes = 0.0, 0
    for text in texts:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)[: llm.n_ctx()]
        llm.reset()
        llm.eval(ids)
        logits = np.asarray(llm.scores[: len(ids) - 1], dtype=np.float64)
        logz = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
        nats += float((logz - logits[np.arange(len(ids) - 1), ids[1:]]).sum())
        nbytes += len(text.encode("utf-8"))
    return nats / math.log(2) / nbytes
