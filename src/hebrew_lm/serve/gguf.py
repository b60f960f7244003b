"""`hebrew-lm export gguf MODEL_DIR`: a causal-LM folder as GGUF files for llama.cpp, Ollama and LM Studio.

    hebrew-lm export gguf runs/tiny-decoder/sft/model                    # -> runs/tiny-decoder/sft/model-gguf
    hebrew-lm export gguf runs/x/cpt/model --outtype f32 --quantize q8_0 q4_k_m

OUTPUT/
  NAME-TYPE.gguf    llama.cpp's converter's file (tokenizer, extended vocabulary, chat template and the
                    end-of-turn token inside), and one file per --quantize type
  Modelfile         for `ollama create NAME -f Modelfile`: the file, the chat template as Ollama writes
                    it, the stop tokens, greedy decoding
  README.md         the source's card (its license) with each file's sha256 and how to run it
  check.json        with llama.cpp's binding: each file loaded and compared with `transformers` on the
                    source folder: the prompts' tokens, greedy tokens, top-1 agreement, bits per byte
  stats.json, _SUCCESS

The converter is llama.cpp's (`hebrew_lm.serve.converter`); nothing here writes GGUF itself.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from hebrew_lm.runs import atomic_write_json, atomic_write_text, check_finished, claim_output_dir, clear_owned_dir, \
    fingerprint, mark_success, sha256_file
from hebrew_lm.serve.config import GgufConfig

log = logging.getLogger("hebrew_lm")

FORMAT_VERSION = 1
CHATML_OLLAMA = ('{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}'
                 '<|im_start|>assistant\n')
"""The SFT stage's ChatML template (hebrew_lm.sft.data) in Ollama's Go template language."""


def check_model_dir(folder: Path) -> dict[str, Any]:
    """The folder's config.json, when it is a causal LM with a tokenizer; a one-line error otherwise."""
    if not (folder / "config.json").is_file():
        raise ValueError(f"export gguf: {folder} is not a Hugging Face model folder (no config.json)")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if not any(a.endswith("ForCausalLM") or a.endswith("ForConditionalGeneration") for a in config.get("architectures") or []):
        raise ValueError(f"export gguf: {folder}/config.json is not a causal LM (architectures: "
                         f"{config.get('architectures')}); export a decoder, cpt, long_context or sft model")
    if not any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer.model")):
        raise ValueError(f"export gguf: {folder} has no tokenizer (tokenizer.json or tokenizer.model)")
    return config


def source_fingerprint(folder: Path) -> dict[str, str]:
    """sha256 of every file the converter reads (weights, config, tokenizer, template)."""
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix in {".json", ".safetensors", ".bin", ".model", ".jinja"}}


def chat_stops(folder: Path) -> list[str]:
    """The end-of-turn marker(s) of the folder's chat template (ChatML's <|im_end|>), or none."""
    from transformers import AutoTokenizer

    template = AutoTokenizer.from_pretrained(str(folder)).chat_template or ""
    return ["<|im_end|>"] if "<|im_end|>" in template else []


def modelfile(file: str, folder: Path, context: int) -> str:
    """An Ollama Modelfile for `file`: ChatML translated for a ChatML model; raw completion otherwise."""
    stops = chat_stops(folder)
    lines = ["# ollama create NAME -f Modelfile   (then: ollama run NAME)", f"FROM ./{file}"]
    if stops:
        lines.append(f'TEMPLATE """{CHATML_OLLAMA}"""')
    else:
        lines.append('TEMPLATE """{{ .Prompt }}"""')
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    lines += ["PARAMETER temperature 0", f"PARAMETER num_ctx {context}"]
    return "\n".join(lines) + "\n"


def card(folder: Path, files: dict[str, dict[str, Any]], name: str, check: dict[str, Any] | None) -> str:
    """The source's card (its front matter, so its license, kept) with a section on the GGUF files."""
    source = (folder / "README.md").read_text(encoding="utf-8") if (folder / "README.md").is_file() else ""
    rows = "\n".join(f"| `{f}` | {v['type']} | {v['bytes'] / 1e6:,.1f} MB | `{v['sha256']}` |" for f, v in files.items())
    first = next(iter(files))
    if check is None:
        checked = "Not checked here: llama.cpp's Python binding was not installed."
    else:
        checked = (f"Checked with llama.cpp against `transformers` (float32) on the source folder: {len(check['prompts'])} "
                   f"prompts, {check['new_tokens']} greedy tokens each; bits per byte on {check['heldout_sentences']} "
                   f"held-out Hebrew sentences (transformers: {check['transformers_bits_per_byte']:.4f}).\n\n"
                   "| file | prompt tokens same | greedy tokens same | top-1 agreement | bits per byte |\n|---|---|---|---|---|\n"
                   + "\n".join(f"| `{f}` | {r['prompt_ids_same']}/{r['prompts']} | {r['greedy_same_prompts']}/{r['prompts']} | "
                                f"{r['top1_agreement']:.1%} | {r['bits_per_byte']:.4f} |" for f, r in check["files"].items()))
    if check and check.get("disagreements"):
        checked += "\n\n**The check found differences:** " + "; ".join(check["disagreements"]) + "."
    section = f"""
## GGUF files (llama.cpp, Ollama, LM Studio)

Converted from `{folder}` with llama.cpp's `convert_hf_to_gguf.py` by `hebrew-lm export gguf`.

| file | type | size | sha256 |
|---|---|---|---|
{rows}

{checked}

    llama-cli -m {first} -cnv                  # llama.cpp
    llama-server -m {first} --port 8080        # OpenAI-compatible server
    ollama create {name} -f Modelfile && ollama run {name}

llama.cpp does not apply a tokenizer's normalizer: text with niqqud, cantillation or unusual quotes and
spaces is not normalized as `transformers` would (hebrew_lm.text.normalize); normalize it first.
"""
    return source.rstrip() + "\n" + section


def disagreements(check: dict[str, Any], files: dict[str, dict[str, Any]]) -> list[str]:
    """What an f32 file computes differently from `transformers`: it must give the same prompt ids and greedy
    tokens, and bits per byte within 0.1% (float32 sums in another order: ~1e-6 measured here). Such a
    difference is the converter's or llama.cpp's reading of the architecture (e.g. a Qwen3-MoE with
    norm_topk_prob false, which llama.cpp always renormalizes), never rounding."""
    lines = []
    for name, r in check["files"].items():
        if files[name]["type"] != "f32":
            continue
        reference = check["transformers_bits_per_byte"]
        if r["prompt_ids_same"] < r["prompts"]:
            lines.append(f"{name}: llama.cpp tokenizes {r['prompts'] - r['prompt_ids_same']} of {r['prompts']} prompts differently")
        if r["greedy_same_prompts"] < r["prompts"]:
            lines.append(f"{name}: greedy tokens differ from transformers' for {r['prompts'] - r['greedy_same_prompts']} "
                         f"of {r['prompts']} prompts")
        if reference and r["bits_per_byte"] is not None and abs(r["bits_per_byte"] / reference - 1) > 1e-3:
            lines.append(f"{name}: {r['bits_per_byte']:.4f} bits per byte against transformers' {reference:.4f}: "
                         "llama.cpp computes another model")
    return lines


def run(config: GgufConfig, force: bool = False) -> Path:
    """Convert, quantize, check and describe; return the output folder."""
    from hebrew_lm.serve import llama_cpp
    from hebrew_lm.serve.check import check_files
    from hebrew_lm.serve.converter import convert

    c = config
    folder, out = Path(c.model_dir), Path(c.output_dir)
    hf_config = check_model_dir(folder)
    kinds = c.quantize  # checked against llama_cpp.QUANT_TYPES when the config loads
    if kinds:
        llama_cpp.binding()  # before anything is converted: the quantizer is the binding's
    llama_cpp.converter_dir()
    fp = fingerprint({"version": FORMAT_VERSION, "config": dataclasses.asdict(c), "source": source_fingerprint(folder),
                      "binding": llama_cpp.has_binding()})
    if check_finished(out, fp, "gguf", force):
        return out
    claim_output_dir(out, "gguf")
    clear_owned_dir(out, "gguf", "exporting again")
    made = [(f"{c.name}-{c.outtype}.gguf", c.outtype)]
    log.info("gguf: converting %s with llama.cpp's converter (%s)", folder, c.outtype)
    convert(folder, out / f".{made[0][0]}.partial", c.outtype)
    os.replace(out / f".{made[0][0]}.partial", out / made[0][0])
    for kind in kinds:
        if kind == c.outtype:
            continue
        log.info("gguf: quantizing to %s", kind)
        llama_cpp.quantize(out / made[0][0], out / f".{c.name}-{kind}.gguf.partial", kind)
        os.replace(out / f".{c.name}-{kind}.gguf.partial", out / f"{c.name}-{kind}.gguf")
        made.append((f"{c.name}-{kind}.gguf", kind))
    files = {f: {"type": kind, "bytes": (out / f).stat().st_size, "sha256": sha256_file(out / f)} for f, kind in made}
    check = None
    if c.check and llama_cpp.has_binding():
        check = check_files(folder, [out / f for f, _ in made], c.prompts, c.check_tokens, c.check_sentences)
        check["disagreements"] = disagreements(check, files)
        for line in check["disagreements"]:
            log.warning("gguf: %s", line)
        atomic_write_json(out / "check.json", check)
    elif c.check:
        log.warning("gguf: llama.cpp's Python binding is not installed: the files are not checked (scripts/setup.sh builds it)")
    serving = made[1] if len(made) > 1 else made[0]
    context = int(hf_config.get("max_position_embeddings") or 2048)
    atomic_write_text(out / "Modelfile", modelfile(serving[0], folder, min(context, 8192)))
    atomic_write_text(out / "README.md", card(folder, files, c.name, check))
    atomic_write_json(out / "stats.json", {"source": str(folder), "files": files, "check": check})
    mark_success(out, fp)
    log.info("gguf: -> %s", out)
    return out
