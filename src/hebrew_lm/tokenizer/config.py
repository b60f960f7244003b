"""The tokenizer stages' configs: training a Hebrew BPE, extending a base's vocabulary, and trimming one."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from hebrew_lm.config import bounded, check_ranges


@dataclass
class TokenizerConfig:
    """`hebrew-lm tokenizer train`: corpus -> Hebrew byte-level BPE tokenizer (a Hugging Face folder) + its audit."""

    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {"corpus_dir": "corpus", "output_dir": "tokenizer"}

    corpus_dir: str
    """A finished corpus stage folder to train on (default: RUN_DIR/corpus)."""
    output_dir: str
    """Folder the tokenizer is written to (default: RUN_DIR/tokenizer)."""
    vocab_size: int = bounded("[1, 4294967295]", 52_000)
    """Vocabulary size, special tokens and the 256 byte symbols included (the paper: 52,000)."""
    min_frequency: int = bounded("[1, inf)", 2)
    """A merge must occur at least this many times in the sample."""
    sample_bytes: int = bounded("[1, inf)", 20_000_000_000)
    """Bytes of training-split text to train on (the paper: 20 GB of its 49.1 GB); the corpus is shuffled, so its first documents are a random sample."""
    seed: int = bounded("[0, 4294967295]", 0)
    """Seed of the order in which shards are read for the sample."""
    char_aligned: bool = True
    """Learn merges over whole characters and write them as byte-level merges, so no token holds half a Hebrew letter (plain byte-level BPE spends ~20% of a 52k vocabulary on such fragments). False: plain byte-level BPE, as RoBERTa and the paper."""
    add_prefix_space: bool = False
    """Encode the first word of a text as if a space came before it (RoBERTa: false, so 'שלום' at the start of a text and ' שלום' inside it are different tokens)."""
    model_max_length: int = bounded("[8, 1000000000]", 512)
    """The model_max_length recorded in tokenizer_config.json (RoBERTa: 512 positions)."""
    audit: bool = True
    """Audit the new tokenizer on the corpus's validation split and on gold morpheme segmentations (results in OUTPUT/audit/)."""
    audit_baselines: bool = True
    """Train baselines for the audit, all of the same size: plain byte-level BPE (the paper's recipe; or the aligned one when char_aligned is false) and sentencepiece BPE and unigram on the same sample, and a byte-level BPE on English text."""
    baseline_sample_bytes: int = bounded("[1, inf)", 200_000_000)
    """At most this many bytes of the sample go into each baseline (they are for comparison, not for use)."""
    audit_max_docs: int = bounded("[1, inf)", 2000)
    """Validation documents used by the audit."""

    def __post_init__(self) -> None:
        from hebrew_lm.tokenizer.specials import SPECIAL_TOKENS

        check_ranges(self, "tokenizer")
        smallest = 256 + len(SPECIAL_TOKENS)
        if self.vocab_size <= smallest:
            raise ValueError(
                f"tokenizer.vocab_size must be larger than the 256 byte symbols plus {len(SPECIAL_TOKENS)} "
                f"special tokens ({smallest}), got {self.vocab_size}"
            )


@dataclass
class ExtendConfig:
    """`hebrew-lm tokenizer extend`: a base causal LM + a Hebrew corpus -> the base with N Hebrew tokens added to its tokenizer and embeddings (no existing id changes; a Hugging Face folder)."""

    SECTION: typing.ClassVar[str] = "extend"
    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {
        "base_dir": "decoder/model", "corpus_dir": "hebrew_corpus", "output_dir": "extend"}

    base_dir: str
    """A local Hugging Face causal-LM folder with a BPE tokenizer.json (default: RUN_DIR/decoder/model)."""
    corpus_dir: str
    """A finished corpus stage folder of Hebrew text to learn the new tokens on (default: RUN_DIR/hebrew_corpus)."""
    output_dir: str
    """Folder for the extended model and tokenizer, and extension.json (default: RUN_DIR/extend)."""
    add: int = bounded("[1, 1000000]", 1000)
    """Hebrew tokens to add (DictaLM 2.0 added 1,000)."""
    sample_documents: int = bounded("[1, inf)", 20_000)
    """Training documents of the corpus the new tokens are learned on."""
    measure_speed: bool = True
    """Time a training step and greedy generation before and after, in words a second (extension.json):
    what fewer tokens per word buy. Two forward-backward passes of the base: about a minute for a 135M base
    on 2 CPU cores; turn off for a base too large to train on this machine."""

    def __post_init__(self) -> None:
        check_ranges(self, "extend")


@dataclass
class TrimConfig:
    """`hebrew-lm tokenizer trim`: a multilingual base causal LM + corpora in its target languages -> the base with only the tokens they use (and the special, byte-fallback and merge-part tokens): a smaller embedding and output layer, the same tokens and logits on that text (a Hugging Face folder)."""

    SECTION: typing.ClassVar[str] = "trim"
    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, typing.Any]] = {
        "base_dir": "base", "corpus_dirs": ["hebrew_corpus", "corpus"], "output_dir": "trim"}

    base_dir: str
    """A local Hugging Face causal-LM folder with a tokenizer.json (default: RUN_DIR/base, an import's folder)."""
    corpus_dirs: list[str]
    """Finished corpus stage folders whose text (both splits) decides what is kept: the Hebrew corpus and the anchor language's (default: RUN_DIR/hebrew_corpus and RUN_DIR/corpus)."""
    output_dir: str
    """Folder for the trimmed model and tokenizer, and trim.json (default: RUN_DIR/trim)."""

    def __post_init__(self) -> None:
        if not self.corpus_dirs:
            raise ValueError("trim.corpus_dirs: give the corpora whose tokens are kept")
