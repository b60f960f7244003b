"""`hebrew-lm chat MODEL`: talk to a chat model in the terminal, or answer one `--prompt`. MODEL is a Hugging
Face folder (run by `transformers`) or a GGUF file (run by llama.cpp, its chat template from the file):
the same commands either way, so the two engines can be compared (`--stats`: tokens/s).

    hebrew-lm chat runs/tiny-decoder/sft/model                     # interactive: /reset, /exit
    hebrew-lm chat runs/tiny-decoder/sft/model --prompt "שלום, מה שלומך?" --stats
    hebrew-lm chat runs/tiny-decoder/sft/model-gguf/model-f16.gguf --prompt "שלום, מה שלומך?" --stats

Output streams as it is generated (transformers' TextIteratorStreamer). Terminals mostly draw text left
to right in the order it is written, which shows Hebrew backwards; with `--bidi on` (the default on a
terminal) each line is reordered for display with the Unicode bidirectional algorithm (python-bidi), so
it streams line by line; piped output keeps the logical order (`--bidi off`), which is what scripts want.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TextIO


class TransformersChat:
    """A Hugging Face folder with a chat template, in float32, decoded greedily."""

    def __init__(self, folder: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not (folder / "config.json").is_file():
            raise ValueError(f"chat: {folder} is not a Hugging Face model folder (no config.json) or a .gguf file")
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        if not self.tokenizer.chat_template:
            raise ValueError(f"chat: {folder}'s tokenizer has no chat template; make a chat model with `hebrew-lm sft`")
        self.model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()

    def reply(self, messages: list[dict[str, str]], max_new_tokens: int, display: Display) -> dict[str, float]:
        """Generate the assistant's next turn greedily, streaming it to `display`; its text and timings."""
        import torch
        from transformers import TextIteratorStreamer

        tokenizer = self.tokenizer
        inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        result: dict = {}

        def generate() -> None:
            with torch.no_grad():
                result["ids"] = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer)

        started = time.perf_counter()
        thread = threading.Thread(target=generate)
        thread.start()
        first, text = None, ""
        for piece in streamer:
            if piece and first is None:
                first = time.perf_counter() - started
            text += piece
            display.write(piece)
        thread.join()
        seconds = time.perf_counter() - started
        display.close()
        return timings(text, first, seconds, int(result["ids"].shape[1] - inputs["input_ids"].shape[1]))


class LlamaCppChat:
    """A GGUF file through llama.cpp's chat-completion API: the chat template and end-of-turn token are the
    file's own (`hebrew-lm export gguf` puts them there); greedy (temperature 0), no repetition penalty."""

    def __init__(self, file: Path) -> None:
        from hebrew_lm.serve.llama_cpp import load

        if not file.is_file():
            raise ValueError(f"chat: {file} does not exist")
        self.llm = load(file, n_ctx=4096)
        if "tokenizer.chat_template" not in self.llm.metadata:
            raise ValueError(f"chat: {file} has no chat template; export a chat model (hebrew-lm sft, then export gguf)")

    def reply(self, messages: list[dict[str, str]], max_new_tokens: int, display: Display) -> dict[str, float]:
        self.llm.reset()  # the whole history again: a Mamba-2 state cannot be rewound to a shared prefix
        started = time.perf_counter()
        first, text, finish = None, "", None
        for chunk in self.llm.create_chat_completion(messages, max_tokens=max_new_tokens, temperature=0.0,
                                                      repeat_penalty=1.0, stream=True):
            choice = chunk["choices"][0]
            piece = choice["delta"].get("content") or ""
            finish = choice.get("finish_reason") or finish
            if piece and first is None:
                first = time.perf_counter() - started
            text += piece
            display.write(piece)
        seconds = time.perf_counter() - started
        display.close()
        # The stream gives text, not token ids: the tokens are the answer's own, plus the end-of-turn token
        # when generation stopped at it (finish_reason "stop"), as `transformers` counts them.
        tokens = len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) + (finish == "stop")
        return timings(text, first, seconds, tokens)


def load_chat_model(path: Path) -> TransformersChat | LlamaCppChat:
    """The engine for `path`: llama.cpp for a .gguf file, `transformers` for a folder."""
    return LlamaCppChat(path) if path.suffix == ".gguf" else TransformersChat(path)


def timings(text: str, first: float | None, seconds: float, new_tokens: int) -> dict:
    return {"text": text.strip(), "seconds_to_first_token": first or seconds, "new_tokens": new_tokens,
            "tokens_per_second": new_tokens / seconds if seconds else 0.0}


class Display:
    """Writes streamed text: as it comes (logical order), or a line at a time reordered for display."""

    def __init__(self, out: TextIO, bidi: bool) -> None:
        self.out, self.bidi, self.line = out, bidi, ""

    def write(self, text: str) -> None:
        if not self.bidi:
            self.out.write(text)
            self.out.flush()
            return
        from bidi import get_display

        self.line += text
        *done, self.line = self.line.split("\n")
        for line in done:
            self.out.write(get_display(line) + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.bidi and self.line:
            from bidi import get_display

            self.out.write(get_display(self.line))
        self.line = ""
        self.out.write("\n")
        self.out.flush()


def chat(folder: Path, prompt: str | None = None, system: str | None = None, max_new_tokens: int = 128,
         bidi: str = "auto", stats: bool = False, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    # the streams of the moment, not of import time (a test's captured stream may be closed by then)
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    if prompt is not None and not prompt.strip():  # before the model loads: an empty turn has nothing to answer
        raise ValueError("chat: --prompt is empty; give the message to answer")
    if system is not None and not system.strip():
        raise ValueError("chat: --system is empty; give a system message or leave the flag out")
    engine = load_chat_model(folder)
    display = Display(stdout, bidi == "on" or (bidi == "auto" and stdout.isatty()))
    start = [{"role": "system", "content": system}] if system else []
    messages = list(start)

    def answer(text: str) -> None:
        messages.append({"role": "user", "content": text})
        got = engine.reply(messages, max_new_tokens, display)
        messages.append({"role": "assistant", "content": got["text"]})
        if stats:
            print(f"[{got['seconds_to_first_token']:.2f} s to the first token, {got['new_tokens']} tokens at "
                  f"{got['tokens_per_second']:.1f} tokens/s]", file=sys.stderr)

    if prompt is not None:
        answer(prompt)
        return 0
    print(f"hebrew-lm chat with {folder}: /reset starts over, /exit (or Ctrl-D) leaves.", file=sys.stderr)
    while True:
        stdout.write("> ")
        stdout.flush()
        line = stdin.readline()
        if not line or line.strip() == "/exit":
            return 0
        if line.strip() == "/reset":
            messages[:] = list(start)
            print("(history cleared)", file=sys.stderr)
            continue
        if line.strip():
            answer(line.strip())
