"""The SFT stage's config: its conversation sources and their weights (`hebrew-lm sft --help`)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from hebrew_lm.config import bounded, check_ranges, coerce
from hebrew_lm.decoder.config import DecoderConfig
from hebrew_lm.sft.data import DEMO_SOURCES


@dataclass
class SourceWeight:
    """One SFT source's sampling weight: `translation=0.3` on the command line, or a mapping in YAML."""

    name: str
    f"""A source: {', '.join(DEMO_SOURCES)} (the demo mix), or a conversation file's stem."""
    weight: float = bounded("[0, inf)", 1.0)
    """Its share of every batch, relative to the other sources' weights."""

    @classmethod
    def from_str(cls, text: str) -> SourceWeight:
        name, sep, weight = text.partition("=")
        if not sep:
            raise ValueError(f"sft.weights: expected SOURCE=WEIGHT, got {text!r}")
        return cls(name.strip(), coerce(weight.strip(), float, f"sft.weights[{name}]"))

    def __post_init__(self) -> None:
        check_ranges(self, f"sft.weights[{self.name}]")


@dataclass(kw_only=True)
class SftConfig(DecoderConfig):
    """`hebrew-lm sft`: a causal LM + conversations -> a chat model trained on the assistant's turns only, with a chat template in its tokenizer (a Hugging Face folder)."""

    SECTION: typing.ClassVar[str] = "sft"
    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {
        "init_from": "cpt/model", "tokenizer_dir": "cpt/model", "hebrew_corpus_dir": "hebrew_corpus",
        "english_corpus_dir": "corpus", "output_dir": "sft", "cache_dir": "cache"}
    # the chat markers a base lacks are appended to its tokenizer; <|im_end|> starts as the base's end of text
    NEW_ROWS_LIKE: typing.ClassVar[dict[str, str]] = {"<|im_end|>": "eos_token_id"}

    corpus_dir: str = ""
    """Unused: SFT trains on `inputs`, not a corpus stage."""
    inputs: list[str] = field(default_factory=lambda: ["embedded:sft-demo"])
    """Conversation files (JSONL of `messages`, or `prompt`/`completion`; globs allowed), public sets as FORMAT:PATH (heq:HeQ's JSON as reading comprehension, smcd:SMCD's TSV as sentiment, hebnli:HebNLI's JSONL as translation both ways; a source named FORMAT) and/or embedded:sft-demo, the demo mix built from package data (docs/sft.md). Each file is a source named after its stem."""
    weights: list[SourceWeight] = field(default_factory=list)
    f"""Sampling weight per source (translation=0.3 english=0.2 ...; sources: {', '.join(DEMO_SOURCES)}, or a file's stem): each batch is split among the sources in these proportions; a source not named gets 0. Empty: in proportion to their sizes."""
    hebrew_corpus_dir: str = ""
    """The Hebrew corpus stage whose train split gives the demo's translation pairs (default: RUN_DIR/hebrew_corpus)."""
    english_corpus_dir: str = ""
    """The English corpus stage whose train split gives the demo's English requests (default: RUN_DIR/corpus)."""
    per_source: int = bounded("[1, inf)", 600)
    """Demo conversations per source at most."""
    validation_fraction: float = bounded("[0, 0.5]", 0.05)
    """Share of the conversations held out for the validation loss (by a hash of their content)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.init_from:
            raise ValueError("sft.init_from: supervised fine-tuning needs a base model folder")
        names = [w.name for w in self.weights]
        if len(set(names)) != len(names):
            raise ValueError(f"sft.weights: each source once, got {names}")
