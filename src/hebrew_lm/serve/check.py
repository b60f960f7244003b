"""A GGUF file checked by a real client: llama.cpp (through its binding) against `transformers` on the
folder it came from.

For each prompt: the prompt's token ids from both tokenizers (the same, or the tokenizer was converted
wrong), and greedy decoding of `check_tokens` tokens from the same ids (the same for an f32 or f16 file,
or the weights or the architecture were). Then top-1 agreement: with the `transformers` continuation fed
to both, the share of positions where both pick the same next token (what a quantized file keeps), and
bits per byte of held-out Hebrew under each (what quantization costs, comparable across files).

Decoding runs through every position (no stop at an end token) so the two engines are compared on the same
number of tokens; each side takes the argmax of its own logits (no sampler).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def heldout_hebrew(sentences: int) -> list[str]:
    """The first `sentences` sentences of the Hebrew Treebank's test split (the embedded corpus trains on its
    train split only)."""
    from hebrew_lm.embedded.htb_ner import read_htb_ner

    return [" ".join(s.words) for s in read_htb_ner()["test"][:sentences]]


def transformers_side(folder: Path, prompts: list[str], new_tokens: int, texts: list[str]) -> dict[str, Any]:
    """Prompt ids, greedy continuations (full recompute each step: exact, and fine at these lengths) and bits
    per byte of `texts`, in float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    prompt_ids, continuations = [], []
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer(prompt)["input_ids"]
            seq = list(ids)
            for _ in range(new_tokens):
                seq.append(int(model(input_ids=torch.tensor([seq])).logits[0, -1].argmax()))
            prompt_ids.append(ids)
            continuations.append(seq[len(ids):])
        nats, nbytes = 0.0, 0
        for text in texts:
            ids = torch.tensor([tokenizer(text)["input_ids"]])
            logits = model(input_ids=ids).logits[0, :-1].double()
            nats += float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))
            nbytes += len(text.encode("utf-8"))
    return {"prompt_ids": prompt_ids, "continuations": continuations,
            "bits_per_byte": nats / math.log(2) / nbytes if nbytes else None}


def top1_agreement(llm, prompt_ids: list[list[int]], continuations: list[list[int]]) -> float:
    """Share of continuation positions where llama.cpp's argmax, fed the reference tokens, is the reference's."""
    import numpy as np

    same = total = 0
    for ids, cont in zip(prompt_ids, continuations):
        llm.reset()
        llm.eval(ids + cont[:-1])
        picks = np.asarray(llm.scores[len(ids) - 1: len(ids) - 1 + len(cont)]).argmax(1)
        same += int((picks == np.asarray(cont)).sum())
        total += len(cont)
    return same / total


def check_files(folder: Path, files: list[Path], prompts: list[str], new_tokens: int, sentences: int) -> dict[str, Any]:
    """check.json: `transformers` on `folder` against llama.cpp on each of `files`."""
    from hebrew_lm.serve.llama_cpp import bits_per_byte, greedy_tokens, load

    texts = heldout_hebrew(sentences)
    reference = transformers_side(folder, prompts, new_tokens, texts)
    result: dict[str, Any] = {"prompts": prompts, "new_tokens": new_tokens, "heldout_sentences": len(texts),
                              "transformers_bits_per_byte": reference["bits_per_byte"], "files": {}}
    for file in files:
        llm = load(file, n_ctx=4096, logits_all=True)
        rows = []
        for prompt, ids, cont in zip(prompts, reference["prompt_ids"], reference["continuations"]):
            theirs = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
            got = greedy_tokens(llm, ids, new_tokens)
            rows.append({"prompt": prompt, "prompt_ids_same": theirs == ids, "transformers": cont, "llama_cpp": got,
                         "same_prefix": next((i for i, (a, b) in enumerate(zip(cont, got)) if a != b), len(cont))})
        result["files"][file.name] = {
            "prompts": len(rows), "prompt_ids_same": sum(r["prompt_ids_same"] for r in rows),
            "greedy_same_prompts": sum(r["transformers"] == r["llama_cpp"] for r in rows),
            "top1_agreement": top1_agreement(llm, reference["prompt_ids"], reference["continuations"]),
            "bits_per_byte": bits_per_byte(llm, texts) if texts else None, "per_prompt": rows}
        llm.close()
    return result
