"""llama.cpp's converter (`convert_hf_to_gguf.py`) on a Hugging Face folder, in a child process.

    convert(model_dir, out_file, "f16")

One thing is added to it. llama.cpp names a BPE tokenizer's pre-tokenizer (the regex that splits text
before merges, which its C++ side reimplements per name) by hashing the tokens of a fixed test string,
looked up in a table of published models. A tokenizer trained or extended here is in no table, so the
converter stops ("BPE pre-tokenizer was not recognized"). Its pre-tokenizer is known from its own
tokenizer.json: when the converter does not recognize the hash and tokenizer.json's pre-tokenizer is one
that a llama.cpp name implements exactly (PRE_TOKENIZERS), that name is used; anything else still stops
with the converter's error. The round-trip check (`hebrew_lm.serve.gguf`) then compares prompt tokens
and greedy tokens with `transformers`, so a wrong name would show.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from hebrew_lm.serve.llama_cpp import converter_dir

log = logging.getLogger("hebrew_lm")

GPT2_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
PRE_TOKENIZERS = {"gpt-2": GPT2_BYTE_LEVEL}
"""llama.cpp's name for a pre-tokenizer -> the fields tokenizer.json's `pre_tokenizer` has when it is that
one. `gpt-2`: byte-level with GPT-2's split regex, what `hebrew-lm tokenizer train` writes for a decoder."""


def known_pre_tokenizer(model_dir: Path) -> str | None:
    """llama.cpp's name for the pre-tokenizer in `model_dir`/tokenizer.json, when PRE_TOKENIZERS knows it."""
    try:
        pre = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8")).get("pre_tokenizer") or {}
    except (OSError, ValueError):
        return None
    for name, fields in PRE_TOKENIZERS.items():
        if all(pre.get(k) == v for k, v in fields.items()):
            return name
    return None


def convert(model_dir: Path, out_file: Path, outtype: str) -> None:
    """Write `out_file` from `model_dir` with llama.cpp's converter; its log goes to ours on failure."""
    command = [sys.executable, "-m", "hebrew_lm.serve.converter", str(converter_dir()), str(model_dir),
               "--outfile", str(out_file), "--outtype", outtype]
    done = subprocess.run(command, capture_output=True, text=True)
    for line in done.stderr.splitlines():
        if line.startswith("hebrew-lm: "):
            log.info("gguf: %s", line.removeprefix("hebrew-lm: "))
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise ValueError(f"export gguf: llama.cpp's converter failed on {model_dir}:\n{tail}")


def _main(argv: list[str]) -> None:
    """In the child: llama.cpp's converter, with the fallback for tokenizers it cannot name."""
    converter, model_dir, *flags = argv
    sys.path.insert(0, converter)
    import convert_hf_to_gguf  # puts llama.cpp's own gguf-py first on the path, as when run as a script
    from conversion.base import TextModel

    recognized = TextModel.get_vocab_base_pre
    name = known_pre_tokenizer(Path(model_dir))

    def get_vocab_base_pre(self, tokenizer) -> str:
        try:
            return recognized(self, tokenizer)
        except NotImplementedError:
            if name is None:
                raise
            print(f"hebrew-lm: llama.cpp's table of tokenizers does not have this one; its tokenizer.json splits "
                  f"text as llama.cpp's {name!r} pre-tokenizer does, so that is written", file=sys.stderr)
            return name

    TextModel.get_vocab_base_pre = get_vocab_base_pre
    sys.argv = ["convert_hf_to_gguf.py", model_dir, *flags]
    convert_hf_to_gguf.main()


if __name__ == "__main__":
    _main(sys.argv[1:])
