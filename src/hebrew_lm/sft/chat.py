"""`hebrew-lm chat MODEL_DIR`: talk to a chat model folder in the terminal, or answer one `--prompt`.

    hebrew-lm chat runs/tiny-decoder/sft/model                     # interactive: /reset, /exit
    hebrew-lm chat runs/tiny-decoder/sft/model --prompt "שלום, מה שלומך?" --stats

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


def load_chat_model(folder: Path):
    """(tokenizer, model) of a folder with a chat template; a one-line error otherwise."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (folder / "config.json").is_file():
        raise ValueError(f"chat: {folder} is not a Hugging Face model folder (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if not tokenizer.chat_template:
        raise ValueError(f"chat: {folder}'s tokenizer has no chat template; make a chat model with `hebrew-lm sft`")
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    model.eval()
    return tokenizer, model


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


def reply(tokenizer, model, messages: list[dict[str, str]], max_new_tokens: int, display: Display) -> dict[str, float]:
    """Generate the assistant's next turn greedily, streaming it to `display`; its text and timings."""
    import torch
    from transformers import TextIteratorStreamer

    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    result: dict = {}

    def generate() -> None:
        with torch.no_grad():
            result["ids"] = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer)

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
    new_tokens = int(result["ids"].shape[1] - inputs["input_ids"].shape[1])
    return {"text": text.strip(), "seconds_to_first_token": first or seconds, "new_tokens": new_tokens,
            "tokens_per_second": new_tokens / seconds if seconds else 0.0}


def chat(folder: Path, prompt: str | None = None, system: str | None = None, max_new_tokens: int = 128,
         bidi: str = "auto", stats: bool = False, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    if prompt is not None and not prompt.strip():  # before the model loads: an empty turn has nothing to answer
        raise ValueError("chat: --prompt is empty; give the message to answer")
    if system is not None and not system.strip():
        raise ValueError("chat: --system is empty; give a system message or leave the flag out")
    tokenizer, model = load_chat_model(folder)
    display = Display(stdout, bidi == "on" or (bidi == "auto" and stdout.isatty()))
    start = [{"role": "system", "content": system}] if system else []
    messages = list(start)

    def answer(text: str) -> None:
        messages.append({"role": "user", "content": text})
        got = reply(tokenizer, model, messages, max_new_tokens, display)
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
