"""The GGUF export's config."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hebrew_lm.config import bounded, check_ranges
from hebrew_lm.serve.llama_cpp import QUANT_TYPES

CHECK_PROMPTS = ["ירושלים היא", "בבוקר הלכתי אל", "The king said unto", "Once upon a time"]


@dataclass
class GgufConfig:
    """`hebrew-lm export gguf MODEL_DIR`: a Hugging Face causal-LM folder -> a GGUF file that llama.cpp, Ollama and LM Studio run (llama.cpp's own converter), an Ollama Modelfile, a card, and a check of the file against `transformers`."""

    SECTION: typing.ClassVar[str] = "gguf"
    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {"model_dir": "sft/model", "output_dir": "gguf"}

    model_dir: str = ""
    """A Hugging Face causal-LM folder: a stage's model/ (decoder, cpt, long_context, sft) or any folder of a
    family llama.cpp converts (NemotronH and its MoE, Llama, Qwen3/Qwen3-MoE, Gemma 3, Mixtral, ...); in a
    preset, RUN_DIR/sft/model."""
    output_dir: str = ""
    """Folder for the GGUF files, Modelfile, README.md and check.json (default: MODEL_DIR-gguf beside the
    model folder; in a preset, RUN_DIR/gguf)."""
    outtype: Literal["f32", "f16", "bf16", "q8_0"] = "f16"
    """The converter's tensor type: f32 and f16 give the same greedy tokens as `transformers` (checked);
    q8_0 is written by the converter itself."""
    quantize: list[str] = field(default_factory=list)
    """Further files made from the converted one by llama.cpp's quantizer (needs the binding), e.g. q4_k_m
    q8_0; the Modelfile points at the first."""
    name: str = "model"
    """File names: NAME-TYPE.gguf."""
    check: bool = True
    """With llama.cpp's binding installed: load each file and compare it with `transformers` on the source
    folder (prompt tokens, greedy tokens, top-1 agreement, bits per byte on held-out Hebrew); check.json."""
    check_tokens: int = bounded("[1, 4096]", 32)
    """Greedy tokens compared per prompt."""
    prompts: list[str] = field(default_factory=lambda: list(CHECK_PROMPTS))
    """Prompts of the check (Hebrew and English)."""
    check_sentences: int = bounded("[0, 100000]", 40)
    """Held-out Hebrew for bits per byte: this many sentences of the Hebrew Treebank's test split (never
    trained on by the embedded corpus)."""

    def __post_init__(self) -> None:
        check_ranges(self, "gguf")
        if not self.model_dir:
            raise ValueError("gguf: give the model folder to export (hebrew-lm export gguf MODEL_DIR)")
        if not self.output_dir:
            model = Path(self.model_dir)
            self.output_dir = str(model.parent / f"{model.name}-gguf")
        self.quantize = [q.lower() for q in self.quantize]
        unknown = [q for q in self.quantize if q not in QUANT_TYPES]
        if unknown:
            raise ValueError(f"gguf.quantize: {unknown[0]!r} is not one of {', '.join(QUANT_TYPES)}")
        if not self.prompts or not all(p.strip() for p in self.prompts):
            raise ValueError("gguf.prompts: give at least one prompt, none empty")
