"""Typed stage configs: a YAML preset, overridden by command-line flags, resolved into dataclasses.

    hebrew-lm corpus build configs/tiny.yaml --min_words 3 --normalize.strip_niqqud false

A preset file has a top-level `run_dir` and `stages`, and one section per stage (`corpus:`, ...).
Each stage's config is one dataclass below; the docstring under each field is its `--help` text
and its entry in docs/config-reference.md. Paths are relative to the working directory.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import inspect
import re
import textwrap
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


# --------------------------------------------------------------------------------------------------
# Allowed ranges: declared beside each field, checked by one function


@dataclass(frozen=True)
class Interval:
    """An allowed range such as `[0, 1)` or `(0, inf)`: brackets include the bound, parentheses exclude it."""

    text: str
    low: float
    high: float
    low_open: bool
    high_open: bool

    @classmethod
    def parse(cls, text: str) -> Interval:
        m = re.fullmatch(r"([\[(])\s*([-\d.e+]+|-inf)\s*,\s*([-\d.e+]+|inf)\s*([\])])", text)
        if not m:
            raise ValueError(f"not an interval: {text!r}")  # our own typo: fails at import
        return cls(text, float(m.group(2)), float(m.group(3)), m.group(1) == "(", m.group(4) == ")")

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below


def bounded(interval: str, default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A numeric config field with its allowed range, e.g. `dropout: float = bounded("[0, 1)", 0.1)`; for a
    list, every item must lie in it. `check_ranges` enforces it; `--help` and the config reference show it."""
    return field(default=default, default_factory=default_factory, metadata={"range": Interval.parse(interval)})


def field_range(f: dataclasses.Field) -> Interval | None:
    return f.metadata.get("range")


def check_ranges(config: Any, where: str) -> None:
    """The one range check: every bounded field of `config` (each item of a list) lies in its interval,
    else a ValueError naming the field, the value and the allowed range."""
    for f in dataclasses.fields(config):
        interval = field_range(f)
        if interval is None:
            continue
        value = getattr(config, f.name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool) or not isinstance(item, (int, float)) or item != item or item not in interval:
                raise ValueError(f"{where}.{f.name} must lie in {interval.text}, got {value!r}")


# --------------------------------------------------------------------------------------------------
# Which fields name a stage's inputs: one rule, read by the ownership check


OUTPUT_FIELDS = frozenset({"output_dir", "cache_dir"})
INPUT_FIELDS = frozenset({"init_from", "models", "inputs", "path", "train", "dev", "test", "timings"})


def is_input_field(name: str) -> bool:
    """A field that names something a stage reads: `init_from`, `models`, `inputs`, a task's `path`/`train`/
    `dev`/`test`, `timings`, and every `*_dir`/`*_dirs` but the stage's own output_dir and cache_dir."""
    return name in INPUT_FIELDS or (name.endswith(("_dir", "_dirs")) and name not in OUTPUT_FIELDS)


def input_paths(config: Any, prefix: str = "") -> list[tuple[str, Path]]:
    """(field, path) for every input a config names, nested specs included (a corpus input's path, a
    fine-tuning task's files); embedded sources are skipped and a glob stands for the folder it starts in."""
    found: list[tuple[str, Path]] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        for item in value if isinstance(value, list) else [value]:
            if dataclasses.is_dataclass(item):
                found += input_paths(item, f"{prefix}{f.name}.")
            elif isinstance(item, str) and item and is_input_field(f.name) and not item.startswith("embedded:"):
                fixed = re.split(r"[*?[]", item, maxsplit=1)[0]  # a glob: the folder its fixed part ends in
                found.append((f"{prefix}{f.name}", Path(item) if fixed == item else Path(fixed + "x").parent))
    return found


# --------------------------------------------------------------------------------------------------
# Stage configs


@dataclass
class NormalizeConfig:
    """Hebrew text normalization, applied to every document before filtering and deduplication.

    Each rule is a pure function in `hebrew_lm.text.normalize`; docs/normalization.md explains them.
    """

    nfc: bool = True
    """Unicode NFC, so that a letter with points has one spelling (also decomposes presentation forms such as U+FB2A)."""
    strip_cantillation: bool = True
    """Remove cantillation marks (te'amim, U+0591-U+05AF): they never occur in modern text."""
    strip_niqqud: bool = True
    """Remove vowel points and other pointing (niqqud, dagesh, shin/sin dots, U+05B0-U+05C7). Set false to keep them."""
    unify_quotes: bool = True
    """Map geresh ׳ and gershayim ״ (and typographic quotes) to ASCII ' and ", the way most Hebrew is typed: צה״ל -> צה"ל."""
    maqaf_to_hyphen: bool = True
    """Map the Hebrew maqaf ־ (U+05BE) to an ASCII hyphen, the way modern text writes compounds."""
    strip_invisibles: bool = True
    """Remove bidi controls (LRM, RLM, embeddings, isolates), zero-width characters, BOM and soft hyphens (an emoji's joiner is kept)."""
    unify_whitespace: bool = True
    """Turn every Unicode space into ' ', collapse runs, trim lines, keep single line breaks and at most one blank line."""


@dataclass
class InputSpec:
    """One input of the corpus stage. In YAML either a bare string (the path) or a mapping."""

    path: str
    """A file, a glob (`data/**/*.jsonl.gz`), or an embedded source: `embedded:scriptures`, `embedded:htb-train`."""
    format: Literal["auto", "text", "jsonl", "parquet", "wiki"] = "auto"
    """How to read it; `auto` decides by the file name: .txt, .jsonl/.json, .parquet, .xml (each optionally .gz, .bz2 or .zst)."""
    name: str = ""
    """The source name in stats.json and in each document's `source` column; defaults to the path as written."""
    text_field: str = "text"
    """JSONL and Parquet: the field that holds the document text."""
    doc_per: Literal["line", "paragraph"] = "line"
    """Plain text: one document per line, or per paragraph (lines up to a blank line)."""

    @classmethod
    def from_str(cls, value: str) -> InputSpec:
        return cls(path=value)

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("an input needs a non-empty `path`")
        if not self.name:
            self.name = self.path


@dataclass
class CorpusConfig:
    """`hebrew-lm corpus build`: raw Hebrew text -> clean, deduplicated, shuffled, sharded corpus."""

    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {"output_dir": "corpus"}

    output_dir: str
    """Folder the corpus is written to (default: RUN_DIR/corpus)."""
    inputs: list[InputSpec] = field(default_factory=list)
    """Files, globs or embedded sources to read. Empty: the embedded default (classical texts + Hebrew Treebank train split)."""
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    """Hebrew normalization rules (see NormalizeConfig)."""
    min_words: int = bounded("[0, inf)", 5)
    """Drop documents with fewer whitespace-separated words than this (reason `too_short`)."""
    max_chars: int = bounded("[1, inf)", 1_000_000)
    """Drop documents longer than this many characters (reason `too_long`); a longer line is never held in memory whole."""
    min_hebrew_ratio: float = bounded("[0, 1]", 0.5)
    """Drop documents whose letters are less than this share Hebrew letters (reason `low_hebrew_ratio`)."""
    repetition_filter: bool = True
    """Gopher-style repetition filter: duplicate lines and repeated word n-grams (reasons `repetition_lines`, `repetition_ngrams`)."""
    repetition_tolerance: float = bounded("(0, inf)", 1.0)
    """Multiplier on Gopher's repetition thresholds (tuned for web pages); above 1 tolerates more. Classical texts quote themselves: at 1.0 the filter drops 28% of Talmud pages."""
    repetition_min_words: int = bounded("[0, inf)", 50)
    """Apply the n-gram part of the repetition filter only to documents with at least this many words (short ones give no reliable statistics)."""
    boilerplate_filter: bool = True
    """Remove boilerplate lines (bare URLs, menus, 'all rights reserved', 'read more'); drop the document if they were most of it (reason `boilerplate`)."""
    max_boilerplate_line_fraction: float = bounded("[0, 1]", 0.5)
    """Drop a document when more than this share of its lines is boilerplate."""
    exact_dedup: bool = True
    """Drop documents whose normalized text was already seen (reason `exact_duplicate`)."""
    near_dedup: bool = True
    """Drop near-duplicates found by MinHash LSH over word shingles (reason `near_duplicate`)."""
    near_dup_threshold: float = bounded("(0, 1)", 0.8)
    """Jaccard similarity of word-shingle sets at which two documents count as near-duplicates."""
    shingle_words: int = bounded("[1, inf)", 5)
    """Words per shingle for near-duplicate detection."""
    minhash_num_perm: int = bounded("[16, 8192]", 128)
    """Permutations (hash functions) per MinHash signature: more is sharper and slower."""
    validation_fraction: float = bounded("[0, 1)", 0.01)
    """Share of documents held out for validation, chosen by a seeded hash of the text (stable across reruns)."""
    seed: int = bounded("[0, 4294967295]", 0)
    """Seed of the shuffle and of the validation split."""
    shard_format: Literal["parquet", "jsonl.gz"] = "parquet"
    """File format of the output shards (columns: id, source, text)."""
    shard_size_mb: float = bounded("(0, inf)", 256)
    """Approximate text bytes per shard, in MB (fractions allowed)."""
    shuffle_buffer_mb: int = bounded("[1, inf)", 512)
    """Memory held while shuffling: the corpus is spread over buckets of about this size, each shuffled in memory."""
    num_workers: int = bounded("[0, 1024]", 0)
    """Processes for normalization, filters and MinHash; 0 uses every core, 1 runs in this process."""
    max_reject_chars: int = bounded("[0, inf)", 2000)
    """Characters of each dropped document kept in rejects.jsonl.gz (with its file, line and reason)."""
    executor: Literal["local", "slurm", "ray"] = "local"
    """Where the datatrove pipeline runs when tasks >= 1: local (processes on this machine), slurm (sbatch array jobs), ray (a Ray cluster: ray.init() finds it). Settings do not change the corpus: the same inputs and settings give the same documents on every executor."""
    tasks: int = bounded("[0, 100000]", 0)
    """0: the single-machine path (one process tree; the fastest on one host). N >= 1: the datatrove pipeline (read+filter+signatures, dedup buckets, clusters, filter, shards), its sharded stages in N tasks; input files are shared out among the tasks, so more tasks than files leave some idle."""
    workers: int = bounded("[0, 100000]", 0)
    """Tasks run at once (datatrove's `workers`); 0: all of them (local: at most the number of cores)."""
    executor_options: dict[str, Any] = field(default_factory=dict)
    """More arguments for datatrove's executor, e.g. slurm: {partition: cpu, time: "04:00:00", cpus_per_task: 2, mem_per_cpu_gb: 4, venv_path: .venv/bin/activate}; ray: {cpus_per_task: 1, mem_per_cpu_gb: 4}."""

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise ValueError("corpus.output_dir is empty: set it, or set run_dir in the preset")
        check_ranges(self, "corpus")
        if self.executor != "local" and not self.tasks:
            raise ValueError(f"corpus.executor {self.executor} runs the datatrove pipeline: set corpus.tasks >= 1 "
                             f"(tasks 0 is the single-machine path)")


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


@dataclass(kw_only=True)
class TrainingConfig:
    """What the training engine (`hebrew_lm.train`) needs from any training stage: batch, schedule,
    optimizer, precision, checkpoints, spikes. Defaults are the HalleluBERT paper's (RoBERTa's)."""

    SECTION: typing.ClassVar[str] = "train"

    global_batch_size: int = bounded("[1, inf)", 8192)
    """Sequences per optimizer step over all processes (the paper: 8,192); must be micro_batch_size x processes x a whole number."""
    micro_batch_size: int = bounded("[1, inf)", 16)
    """Sequences per forward pass on one process; gradient accumulation makes up the rest of the global batch."""
    max_steps: int = bounded("[1, inf)", 100_000)
    """Optimizer steps (the paper: 100,000)."""
    warmup_steps: int = bounded("[0, inf)", 10_000)
    """Steps of linear warmup from 0 to the peak learning rate (the paper: 10,000)."""
    learning_rate: float = bounded("(0, 1]", 4e-4)
    """Peak learning rate (the paper: 4e-4 for base, 1.5e-4 for large)."""
    lr_decay_power: float = bounded("[0, 100]", 1.0)
    """Polynomial decay from the peak to 0 after warmup; 1.0 is linear (fairseq's polynomial_decay with power 1)."""
    adam_beta1: float = bounded("[0, 1)", 0.9)
    """AdamW beta1."""
    adam_beta2: float = bounded("[0, 1)", 0.98)
    """AdamW beta2 (RoBERTa: 0.98)."""
    adam_eps: float = bounded("(0, 1]", 1e-6)
    """AdamW epsilon (RoBERTa: 1e-6)."""
    weight_decay: float = bounded("[0, 1]", 0.01)
    """Weight decay, not applied to biases and LayerNorm weights."""
    grad_clip: float = bounded("[0, inf)", 0.0)
    """Clip the gradient norm to this; 0 turns clipping off (the paper's recipe has none)."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """fp32 (the paper), bf16 autocast, or fp16 autocast with loss scaling (CUDA)."""
    compile: bool = False
    """torch.compile the model (about 10% on CPU; more on GPU)."""
    fsdp: bool = False
    """Under torchrun, shard parameters, gradients and optimizer state across processes (FSDP2, one unit per layer) instead of replicating them (DDP): for the large preset."""
    seed: int = bounded("[0, 4294967295]", 0)
    """Seed of initialization, data order, masking and dropout."""
    log_every: int = bounded("[1, inf)", 10)
    """Steps between log lines and metrics.jsonl records."""
    eval_every: int = bounded("[1, inf)", 500)
    """Steps between validation loss and perplexity measurements (and at the end)."""
    eval_batches: int = bounded("[1, inf)", 20)
    """Micro-batches of the validation split per measurement (the same ones, masked the same way, every time)."""
    checkpoint_every: int = bounded("[1, inf)", 1000)
    """Steps between checkpoints (and one at the end)."""
    keep_checkpoints: int = bounded("[1, inf)", 3)
    """Newest checkpoints kept; older ones are deleted."""
    spike_factor: float = bounded("[0, inf)", 5.0)
    """A loss above this many times the median of recent losses, or not finite, restores the last checkpoint and skips the offending batches; 0 turns this off."""
    resume: Literal["auto", "never"] = "auto"
    """auto: continue from the newest good checkpoint in output_dir; never: start over."""

    def __post_init__(self) -> None:
        where = self.SECTION
        check_ranges(self, where)
        if self.global_batch_size % self.micro_batch_size:
            raise ValueError(
                f"{where}.global_batch_size ({self.global_batch_size}) must be a multiple of "
                f"{where}.micro_batch_size ({self.micro_batch_size})"
            )
        if self.warmup_steps > self.max_steps:
            raise ValueError(f"{where}.warmup_steps must lie in [0, max_steps={self.max_steps}], got {self.warmup_steps}")
        if 0 < self.spike_factor <= 1:
            raise ValueError(f"{where}.spike_factor must be 0 (off) or above 1 (a multiple of the median loss), "
                             f"got {self.spike_factor}")


@dataclass
class CorpusTrainingConfig(TrainingConfig):
    """A training stage that reads a corpus with a tokenizer: its folders."""

    corpus_dir: str
    """A finished corpus stage folder (default: RUN_DIR/corpus)."""
    tokenizer_dir: str
    """A tokenizer folder with tokenizer.json; its end-of-sequence token ends every document (default: RUN_DIR/tokenizer)."""
    output_dir: str
    """Folder for checkpoints, metrics and the exported model in OUTPUT/model (default: RUN_DIR/STAGE)."""
    cache_dir: str
    """Where tokenized corpora are kept, named by the corpus and tokenizer that made them (default: RUN_DIR/cache)."""


@dataclass
class PretrainConfig(CorpusTrainingConfig):
    """`hebrew-lm pretrain`: corpus + tokenizer -> RoBERTa masked-LM encoder (a Hugging Face folder)."""

    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {
        "corpus_dir": "corpus", "tokenizer_dir": "tokenizer", "output_dir": "pretrain", "cache_dir": "cache"}

    model: Literal["tiny", "small", "base", "large"] = "base"
    """Model preset: tiny (2 layers, 128 hidden), small (4, 256), base (12, 768: the paper's 126M), large (24, 1024: 357M)."""
    max_seq_len: int = bounded("[8, 1000000]", 512)
    """Tokens per training sequence, <s> and </s> included (the paper: 512)."""
    mlm_probability: float = bounded("(0, 1)", 0.15)
    """Share of tokens chosen for prediction each time a sequence is seen (80% <mask>, 10% random, 10% kept). Validation always masks 15% of single tokens, so perplexities of different recipes compare."""
    whole_word_masking: bool = False
    """Choose whole words (all their BPE pieces together) instead of single tokens."""
    dropout: float = bounded("[0, 1)", 0.1)
    """Dropout on hidden states and attention probabilities."""

    SECTION: typing.ClassVar[str] = "pretrain"


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
class DecoderConfig(CorpusTrainingConfig):
    """`hebrew-lm decoder pretrain`: corpus + tokenizer -> a mixture-of-experts causal LM (a Hugging Face folder), from scratch or continued from a base."""

    SECTION: typing.ClassVar[str] = "decoder"
    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {
        "corpus_dir": "corpus", "tokenizer_dir": "tokenizer", "output_dir": "decoder", "cache_dir": "cache"}

    model: Literal["decoder-tiny", "decoder-small", "decoder-1b", "dense-tiny", "dense-tiny-wide", "attention-tiny", "hebatron"] = "decoder-tiny"
    """Model preset (NemotronH: Mamba-2 + MoE + attention): decoder-tiny (minutes on 2 cores), decoder-small, decoder-1b (1.07B active of 3.5B: one GPU), dense-tiny (decoder-tiny's active parameters, no experts), dense-tiny-wide (decoder-tiny's total parameters, dense), attention-tiny (decoder-tiny with attention in place of every Mamba-2 layer, the same parameters within 1%), hebatron (Nemotron-3 Nano 30B-A3B's shape). Ignored with init_from."""
    init_from: str = ""
    """A local Hugging Face causal-LM folder to continue pretraining (any family transformers loads with no custom code); empty: `model` from random initialization."""
    max_seq_len: int = bounded("[8, 1000000]", 1024)
    """Tokens per training sequence at most: a longer document is cut into pieces; shorter ones are padded, never packed together (documents must not attend to each other)."""
    length_bucketing: bool = True
    """Give each step pieces of about one length (shuffled windows sorted by length), so padding them to the longest costs little; false: plain shuffle."""
    chunk_tokens: int = bounded("[0, inf)", 0)
    """Positions projected onto the vocabulary at a time in the loss, so the [batch, sequence, vocabulary] logits never exist whole; 0: as many as make 256 MiB of fp32 logits (512 at vocabulary 131,072)."""
    balance_rate: float = bounded("[0, 1]", 1e-3)
    """MoE routers with a correction bias (NemotronH): after each step, each expert's bias moves by this toward an equal share of tokens (aux-loss-free balancing; Megatron's default 1e-3); 0 turns it off."""
    gradient_checkpointing: bool = False
    """Recompute each layer's activations in the backward pass instead of keeping them: memory per step grows with one layer's activations, not all of them (long sequences), for about a third more compute."""


@dataclass
class PhaseSpec:
    """One curriculum phase: which Hebrew documents it trains on, for what share of the steps, with how much anchor text."""

    name: str
    """A name for logs, metrics and the report (e.g. formal, general, hard)."""
    share: float = bounded("(0, 1]", 1.0)
    """This phase's share of the run's steps (the shares of all phases are normalized to sum to 1)."""
    sources: list[str] = field(default_factory=list)
    """Documents whose corpus `source` is one of these (e.g. embedded:htb-train); empty: any source."""
    difficulty: str = ""
    """A difficulty scorer (compression_ratio, lexical_diversity, mean_word_length, rare_word_rate, or base_loss: the base model's own loss per token) whose quantile range picks this phase's documents; empty: no difficulty filter."""
    quantiles: list[float] = field(default_factory=lambda: [0.0, 1.0])
    """[low, high): the documents whose `difficulty` score lies in these quantiles of the corpus (0.0 to 1.0)."""
    anchor_share: float = bounded("[-1, 1)", -1.0)
    """Share of each batch drawn from the anchor corpus in this phase; -1: the stage's anchor_share."""
    replay_share: float = bounded("[0, 1)", 0.0)
    """Share of each batch replayed from the earlier phases' Hebrew documents (0 in the first phase, which has none)."""

    def __post_init__(self) -> None:
        from hebrew_lm.cpt.difficulty import ALL_SCORERS, MODEL_SCORERS

        if self.difficulty and self.difficulty not in (*ALL_SCORERS, *MODEL_SCORERS):
            raise ValueError(f"phase {self.name!r}: difficulty must be one of {[*ALL_SCORERS, *MODEL_SCORERS]}, "
                             f"got {self.difficulty!r}")
        if len(self.quantiles) != 2 or not 0 <= self.quantiles[0] < self.quantiles[1] <= 1:
            raise ValueError(f"phase {self.name!r}: quantiles must be [low, high) with 0 <= low < high <= 1, got {self.quantiles}")
        check_ranges(self, f"phase {self.name!r}")
        if self.anchor_share != -1 and not 0 <= self.anchor_share < 1:
            raise ValueError(f"phase {self.name!r}: anchor_share must be -1 (the stage's anchor_share) or lie in "
                             f"[0, 1), got {self.anchor_share}")


@dataclass
class CptConfig(DecoderConfig):
    """`hebrew-lm cpt`: a base causal LM + a Hebrew corpus + an anchor corpus -> the base continued on Hebrew in easy-to-hard phases, with anchor text in every batch (a Hugging Face folder)."""

    SECTION: typing.ClassVar[str] = "cpt"
    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {
        "corpus_dir": "hebrew_corpus", "anchor_corpus_dir": "corpus", "init_from": "decoder/model",
        "tokenizer_dir": "decoder/model", "output_dir": "cpt", "cache_dir": "cache"}

    anchor_corpus_dir: str = ""
    """A finished corpus stage folder in the base's own language, mixed into every batch against forgetting and measured for it (default: RUN_DIR/corpus); its validation loss is logged even with anchor_share 0."""
    phases: list[PhaseSpec] = field(default_factory=lambda: [PhaseSpec("all")])
    """The curriculum, easy to hard: each phase's name, share of the steps, document selection (sources and/or a difficulty quantile range) and anchor share."""
    curriculum: Literal["ordered", "reversed", "shuffled"] = "ordered"
    """ordered: the phases as listed; reversed: the last first (the ablation of the order); shuffled: no phases, every phase's documents mixed from the start."""
    anchor_share: float = bounded("[0, 1)", 0.25)
    """Share of every batch drawn from the anchor corpus (published points: DictaLM 2.0 50%, DictaLM 3.0 25%, Swallow about 10%)."""
    schedule: Literal["decay", "wsd"] = "decay"
    """decay: re-warm to the peak rate, then decay over the whole run (Ibrahim et al. 2024); wsd: warmup, a stable rate through the phases, and a linear decay over the last decay_fraction of the steps."""
    decay_fraction: float = bounded("(0, 1]", 0.2)
    """wsd: the share of the steps over which the rate falls to 0."""
    join_related: bool = False
    """Read the Hebrew documents of one work (ids that differ only in a last number: a Bible book's chapters, a tractate's pages) as one long document, in order: the long documents of a context-extension run (related text, never unrelated documents glued together)."""
    loss_by_position: int = bounded("[0, 64]", 0)
    """Also log the Hebrew validation loss by position in the sequence, in this many equal ranges of max_seq_len, on validation pieces of the full length (a context-extension run: does the model use the longer context?); 0: off."""
    rope_parameters: dict[str, Any] = field(default_factory=dict)
    """Merged into the base's rotary settings before training, for families with rotary attention (e.g. {rope_type: yarn, factor: 4.0, original_max_position_embeddings: 4096} or {rope_theta: 1000000}); recorded in the exported config. NemotronH's attention has no positional encoding (Mamba-2 layers carry order): nothing to set."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.init_from:
            raise ValueError("cpt.init_from: continued pretraining needs a base model folder")
        for phase in self.phases:  # the shares a phase trains with, once it inherits the stage's anchor_share
            if self.resolved_anchor_share(phase) + phase.replay_share >= 1:
                raise ValueError(f"cpt.phases: phase {phase.name!r}: anchor_share + replay_share must leave room for "
                                 f"the phase's own documents, got {self.resolved_anchor_share(phase)} + "
                                 f"{phase.replay_share}" + (" (anchor_share from cpt.anchor_share)"
                                                            if phase.anchor_share == -1 else ""))
        if len(self.phases) > self.max_steps and self.curriculum != "shuffled":
            raise ValueError(f"cpt.max_steps {self.max_steps} is fewer than the {len(self.phases)} phases; every phase "
                             "needs a step at least")
        if any(self.resolved_anchor_share(p) > 0 for p in self.phases) and not self.anchor_corpus_dir:
            raise ValueError("cpt.anchor_corpus_dir: an anchor share above 0 needs an anchor corpus")

    def resolved_anchor_share(self, phase: PhaseSpec) -> float:
        """The phase's anchor share: its own, or the stage's when it says -1."""
        return self.anchor_share if phase.anchor_share == -1 else phase.anchor_share


@dataclass
class TaskSpec:
    """One fine-tuning task. In YAML either a bare name (`nemo`) or a mapping."""

    name: str
    """nemo, bmc, smcd (the paper's benchmarks, read from DATA_DIR/<name>), htb-ner, sentiment-demo (embedded, offline), or any name for your own data (give train, dev, test)."""
    kind: Literal["auto", "ner", "classification"] = "auto"
    """ner (word tags, BIOES or BIO) or classification (one label per text); auto: known for the built-in tasks, else from the train file (.bmes/.bio/.conll/.iob: ner)."""
    path: str = ""
    """Built-in tasks: the folder holding the data (default: DATA_DIR/<name>, as `hebrew-lm data download` lays it out, or the files' own repository layout)."""
    train: str = ""
    """Your own task: the train file. NER: `word TAG` lines (CoNLL, BIOES or BIO) or JSONL with `tokens` and `tags` lists; classification: `text<TAB>label` lines or JSONL with `text` and `label`."""
    dev: str = ""
    """Your own task: the dev file (model selection and early stopping)."""
    test: str = ""
    """Your own task: the test file (scored once, with the hyperparameters dev chose)."""
    variant: str = ""
    """nemo: spmrl (default, the split encoder papers report) or ud, token level; spmrl-morph or ud-morph for the morpheme-level files (gold segmentation). smcd: clean (default, deduplicated) or unclean."""
    splits: list[str] = field(default_factory=list)
    """bmc: which of its three random splits to run (default all: 1 2 3), reported as mean +- std."""
    max_epochs: int = bounded("[0, 10000]", 0)
    """Epochs at most for this task's trials; 0: finetune.max_epochs (a small data set may want more)."""

    @classmethod
    def from_str(cls, value: str) -> TaskSpec:
        return cls(name=value)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a task needs a `name`")
        from hebrew_lm.runs import safe_component

        safe_component(self.name, "finetune: task name")  # it names a folder under the output
        check_ranges(self, f"finetune.tasks[{self.name}]")


@dataclass
class FinetuneConfig:
    """`hebrew-lm finetune`: encoders -> fine-tuned on NER and sentiment with a grid search, scored on test once."""

    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, typing.Any]] = {"output_dir": "finetune", "models": ["pretrain/model"]}

    output_dir: str
    """Folder for trials, results (results.md/csv/json/png), error analysis and the best fine-tuned models (default: RUN_DIR/finetune)."""
    models: list[str] = field(default_factory=list)
    """Encoder folders to evaluate (any local Hugging Face encoder with a tokenizer). Empty: RUN_DIR/pretrain/model."""
    model_names: list[str] = field(default_factory=list)
    """A row name for each of `models` (default: from the folder path)."""
    random_init_baseline: bool = True
    """Add a row for the first model's architecture from random initialization: what pretraining bought."""
    tasks: list[TaskSpec] = field(default_factory=lambda: [TaskSpec("bmc"), TaskSpec("nemo"), TaskSpec("smcd")])
    """Tasks to run (default: the paper's bmc, nemo, smcd)."""
    data_dir: str = "data"
    """Where the built-in benchmarks live, one folder each (`hebrew-lm data download` writes there)."""
    learning_rates: list[float] = bounded("(0, 1]", default_factory=lambda: [1e-5, 2e-5, 3e-5, 5e-5])
    """Grid: peak learning rates."""
    batch_sizes: list[int] = bounded("[1, 65536]", default_factory=lambda: [16, 32])
    """Grid: batch sizes."""
    seeds: list[int] = bounded("[0, 4294967295]", default_factory=lambda: [1, 2, 3])
    """Seeds per grid point; scores are mean +- std over them."""
    max_epochs: int = bounded("[1, 10000]", 20)
    """Epochs at most; early stopping usually ends a trial sooner."""
    patience: int = bounded("[1, 10000]", 3)
    """Stop after this many epochs without a better dev score; the best epoch's weights are kept."""
    train_fractions: list[float] = bounded("(0, 1]", default_factory=list)
    """Learning curves: also fine-tune every model on these fractions of each task's training set (e.g. 0.01 0.05 0.25 1) with the chosen hyperparameters and seeds, and plot test score against training size; empty: none."""
    ner_decoding: Literal["argmax", "viterbi"] = "viterbi"
    """NER tags per word: viterbi (the likeliest legal BIOES sequence; +4 to +6 F1 on dev and test of the tiny preset's NER, docs/decisions.md) or argmax (each word its likeliest label; may be ill-formed BIOES, which strict scoring drops). Both F1s are recorded in each trial's test metrics."""
    warmup_ratio: float = bounded("[0, 1)", 0.1)
    """Share of the planned steps spent warming the learning rate up (then linear decay)."""
    weight_decay: float = bounded("[0, 1]", 0.01)
    """AdamW weight decay."""
    max_seq_len: int = bounded("[0, 4096]", 0)
    """Tokens per input; 0: the 95th percentile of tokenized train lengths, rounded up to a multiple of 64 (the paper got 64 and 192). Longer NER sentences are cut into word-aligned windows (no word goes unscored); longer texts are truncated and counted."""
    padding: Literal["bucketed", "longest", "max_length"] = "bucketed"
    """bucketed: batches of inputs of similar length, each padded to its longest (ours); longest: random batches padded to their longest (what transformers' collators do by default); max_length: every input padded to max_seq_len."""
    repair_tags: bool = False
    """Repair illegal BIOES transitions on load (counted and reported) instead of stopping with an error."""
    export_best: bool = True
    """Export each model's best fine-tuned model per task (by dev) to OUTPUT/models/<model>/<task>, loadable with `pipeline`."""
    error_examples: int = bounded("[0, 100000]", 20)
    """Examples per error category written to the error analysis."""
    threads: int = bounded("[0, 1024]", 0)
    """CPU threads for torch; 0: torch's default."""

    def __post_init__(self) -> None:
        if not self.learning_rates or not self.batch_sizes or not self.seeds:
            raise ValueError("finetune.learning_rates, batch_sizes and seeds must each have at least one value")
        check_ranges(self, "finetune")
        if self.max_seq_len and not 8 <= self.max_seq_len <= 4096:
            raise ValueError(f"finetune.max_seq_len must be 0 (auto) or in [8, 4096], got {self.max_seq_len}")
        if self.model_names and len(self.model_names) != len(self.models):
            raise ValueError("finetune.model_names needs one name per entry of finetune.models")
        from hebrew_lm.runs import safe_component

        for name in self.model_names:
            safe_component(name, "finetune: model name")  # it names a folder under the output
        names = [t.name for t in self.tasks]
        if len(set(names)) < len(names):
            raise ValueError(f"finetune.tasks: each task name once, got {names}")


@dataclass
class SourceWeight:
    """One SFT source's sampling weight: `translation=0.3` on the command line, or a mapping in YAML."""

    name: str
    """A source: translation, arithmetic, entities, sentiment, english (the demo mix), or a conversation file's stem."""
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
    ADDS_TOKENS: typing.ClassVar[bool] = True  # the chat markers

    corpus_dir: str = ""
    """Unused: SFT trains on `inputs`, not a corpus stage."""
    inputs: list[str] = field(default_factory=lambda: ["embedded:sft-demo"])
    """Conversation files (JSONL of `messages`, or `prompt`/`completion`; globs allowed) and/or embedded:sft-demo, the demo mix built from package data (docs/sft.md). Each file is a source named after its stem."""
    weights: list[SourceWeight] = field(default_factory=list)
    """Sampling weight per source (translation=0.3 english=0.2 ...; sources: translation, arithmetic, entities, sentiment, english, or a file's stem): each batch is split among the sources in these proportions; a source not named gets 0. Empty: in proportion to their sizes."""
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


@dataclass
class EvalConfig:
    """`hebrew-lm eval`: causal LMs -> few-shot scores on Hebrew and English tasks (lm-evaluation-harness), side by side."""

    SECTION: typing.ClassVar[str] = "eval"
    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, typing.Any]] = {
        "models": ["decoder/model", "cpt/model"], "hebrew_corpus_dir": "hebrew_corpus", "english_corpus_dir": "corpus",
        "train_corpus_dirs": ["corpus", "hebrew_corpus"], "output_dir": "eval"}

    output_dir: str
    """Folder for the task files, results.md/csv/json/png and per-sample logs (default: RUN_DIR/eval)."""
    models: list[str]
    """Local Hugging Face causal-LM folders to evaluate (default: RUN_DIR/decoder/model and RUN_DIR/cpt/model)."""
    model_names: list[str] = field(default_factory=list)
    """A row name for each model, each distinct (default: its folder's name, or its stage's for a `model` folder, with as many parent folders as tell the models apart: a/cpt, b/cpt)."""
    tasks: list[str] = field(default_factory=lambda: ["embedded"])
    """embedded (every embedded task the corpora and packages allow: he_cloze, en_cloze, he_arith, he_sentiment, he_entity_type, verses_he2en, verses_en2he); long_context (he_needle and he_longdoc from the Hebrew corpus's held-out text, at every length of context_words, with the whole context: never cut to max_length); public sets read from data_dir (heq, hebnli, arc_he, copa_he, hellaswag_he, mmlu_he, gsm8k_he, psychometric_he_*, arc_en, hellaswag_en, gsm8k_en); names of tasks whose YAMLs lie in task_dirs. docs/eval.md describes each."""
    task_dirs: list[str] = field(default_factory=list)
    """Folders of more lm-eval task YAMLs (local JSONL files: `dataset_path: json` with `data_files`)."""
    data_dir: str = "data"
    """Where the public sets lie, one folder per task (DATA_DIR/heq from `hebrew-lm data download heq`; DATA_DIR/arc_he/{shots,test}.jsonl)."""
    train_corpus_dirs: list[str] = field(default_factory=list)
    """Corpus stages the models trained on: scored items sharing an n-word sequence with their train split are counted as contaminated (default: RUN_DIR/corpus and RUN_DIR/hebrew_corpus)."""
    contamination_ngram: int = bounded("[4, inf)", 8)
    """Words in the sequences the contamination check looks for."""
    hebrew_corpus_dir: str = ""
    """A finished Hebrew corpus stage whose validation split (held out from training) makes he_cloze (default: RUN_DIR/hebrew_corpus)."""
    english_corpus_dir: str = ""
    """A finished English corpus stage whose validation split makes en_cloze, to see forgetting (default: RUN_DIR/corpus)."""
    context_words: list[int] = bounded("[20, 100000]", default_factory=lambda: [100, 200, 400])
    """long_context: the lengths of the contexts, in words (Hebrew: about 2.3 tokens a word with the tiny preset's extended tokenizer, 1.3-1.6 with a large Hebrew vocabulary)."""
    needle_depths: list[float] = bounded("[0, 1]", default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    """long_context: where in the context he_needle plants its sentence (0: the start, 1: the end)."""
    limit: int = bounded("[0, inf)", 0)
    """Items per task at most (0: all); for quick checks, never for reported numbers."""
    batch_size: int = bounded("[1, inf)", 8)
    """lm-eval's batch size for log-likelihood and generation requests (on CPU, 8 measured as fast as any: bench/eval.py)."""
    max_length: int = bounded("[0, inf)", 0)
    """Tokens of context a request keeps, the rest cut from the left (0: the model's own maximum); the length the model was trained on is the honest choice."""
    device: str = "cpu"
    """cpu or cuda."""

    def __post_init__(self) -> None:
        check_ranges(self, "eval")
        if self.model_names and len(self.model_names) != len(self.models):
            raise ValueError(f"eval.model_names: {len(self.model_names)} names for {len(self.models)} models")
        if len(set(self.model_names)) < len(self.model_names):
            raise ValueError(f"eval.model_names: each model needs its own name (a row and a folder), got {self.model_names}")
        if not self.models:
            raise ValueError("eval.models: give at least one causal-LM folder")


@dataclass
class ReportConfig:
    """`hebrew-lm report`: every stage's outputs -> one self-contained HTML page and a Markdown report."""

    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, typing.Any]] = {
        "corpus_dir": "corpus", "tokenizer_dir": "tokenizer", "pretrain_dir": "pretrain", "finetune_dir": "finetune",
        "decoder_dir": "decoder", "extend_dir": "extend", "cpt_dir": "cpt", "sft_dir": "sft", "eval_dir": "eval",
        "timings": "timings/timings.json",
        "output_dir": "report"}

    output_dir: str
    """Folder for index.html (one file, images inlined) and report.md with its images (default: RUN_DIR/report)."""
    corpus_dir: str = ""
    """The corpus stage's folder (default: RUN_DIR/corpus); a stage that has not run is reported as such."""
    tokenizer_dir: str = ""
    """The tokenizer stage's folder (default: RUN_DIR/tokenizer)."""
    pretrain_dir: str = ""
    """The pretrain stage's folder (default: RUN_DIR/pretrain)."""
    finetune_dir: str = ""
    """The finetune stage's folder (default: RUN_DIR/finetune)."""
    decoder_dir: str = ""
    """The decoder stage's folder (default: RUN_DIR/decoder)."""
    extend_dir: str = ""
    """The vocabulary extension's folder (default: RUN_DIR/extend)."""
    eval_dir: str = ""
    """The evaluation stage's folder (default: RUN_DIR/eval)."""
    sft_dir: str = ""
    """The SFT stage's folder (default: RUN_DIR/sft)."""
    cpt_dir: str = ""
    """The curriculum stage's folder (default: RUN_DIR/cpt)."""
    stages: list[str] = field(default_factory=list)
    """The stages to report, in order (default: the preset's `stages`; with no preset, the encoder track's); a second instance of a stage as NAME=STAGE (hebrew_corpus=corpus), its folder beside the report's."""
    timings: str = ""
    """Wall time per stage, as `hebrew-lm run` records it (default: RUN_DIR/timings/timings.json, a folder `run` owns)."""
    title: str = "hebrew-lm run report"
    """The report's title."""

    def __post_init__(self) -> None:
        from hebrew_lm.stages import DEFAULT_STAGES, STAGES  # the registry imports this module

        unknown = [name for name in self.stages if name.split("=")[-1] not in STAGES]
        if unknown:
            raise ValueError(f"report.stages: unknown stage(s) {unknown}; choose from {list(STAGES)}")
        self.stages = list(self.stages or DEFAULT_STAGES)


# --------------------------------------------------------------------------------------------------
# Generic machinery: field docs, YAML -> dataclass with validation, flags -> overrides


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each dataclass field (the `--help` text of its flag), the class's
    own and its dataclass bases' (TrainingConfig's fields in every training stage)."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__[1:]):
        if dataclasses.is_dataclass(base):
            docs.update(field_docs(base))
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, typing.List):
        return f"list of {_describe(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    if origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp` and convert the lossless cases (CLI strings, ints as floats)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[0])
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ValueError(f"{where}: {value!r} is not one of {', '.join(repr(a) for a in allowed)}")
        return value
    if origin in (list, typing.List):
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, (str, dict)) or not isinstance(value, (list, tuple)):
            value = [value]
        return [coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:  # a free mapping handed on to a library (rotary settings); a flag gives it as YAML
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value) if value.strip() else {}
            except yaml.YAMLError:
                pass
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping (e.g. '{{rope_theta: 1000000}}'), got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, str) and hasattr(tp, "from_str"):
            return tp.from_str(value)
        if isinstance(value, dict):
            return from_dict(tp, value, where)
        raise ValueError(f"{where}: expected {_describe(tp)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, Path)):
            return str(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{where}: expected a string, got {value!r}")
    return value


def from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    """Build dataclass `cls` from a mapping: unknown keys and wrong types are errors naming `where`."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping of {cls.__name__} fields, got {data!r}")
    hints = _type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(names)}"
            raise ValueError(f"{where}: unknown key '{key}'{hint}")
        kwargs[key] = coerce(value, hints[key], f"{where}.{key}")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init and f.name not in kwargs
        and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{where}: missing required key(s): {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except ValueError as e:
        if str(e).startswith(where):
            raise
        raise ValueError(f"{where}: {e}") from None


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """data['a']['b'] = value for dotted = 'a.b', creating the mappings on the way."""
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"--{dotted}: '{part}' is not a section")
    node[last] = value


def flat_fields(cls: type, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted name, type, help) for every leaf field, descending into nested config dataclasses."""
    hints = _type_hints(cls)
    docs = field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(flat_fields(tp, f"{prefix}{f.name}."))
        else:
            interval = field_range(f)
            doc = docs.get(f.name, "") + (f" Range: {interval.text}." if interval else "")
            out.append((f"{prefix}{f.name}", tp, doc))
    return out


# --------------------------------------------------------------------------------------------------
# Presets


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (first at line {seen[key]})", key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_preset(path: str | Path) -> dict[str, Any]:
    """Read a preset YAML file; a missing file or bad YAML is a ValueError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file not found: {path}")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f", line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}{at}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a preset must be a mapping with run_dir, stages and one section per stage")
    from hebrew_lm.stages import DEFAULT_STAGES, STAGE_CONFIGS  # the registry imports this module's classes

    # A section with `stage: KIND` is another instance of that stage (a second corpus, say), named by its key.
    instances = {k: v["stage"] for k, v in data.items() if isinstance(v, dict) and "stage" in v}
    for name, kind in instances.items():
        if kind not in STAGE_CONFIGS or name in STAGE_CONFIGS:
            raise ValueError(f"{path}: section {name!r}: `stage: {kind}` must name a stage ({', '.join(STAGE_CONFIGS)}) "
                             "and the section's own name must not be one")
    unknown = set(data) - {"run_dir", "stages", "description"} - set(STAGE_CONFIGS) - set(instances)
    if unknown:
        raise ValueError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; expected run_dir, stages, description "
            f"or a stage section ({', '.join(STAGE_CONFIGS)})"
        )
    stages = data.get("stages", DEFAULT_STAGES)
    if not isinstance(stages, list) or any(s not in STAGE_CONFIGS and s not in instances for s in stages):
        raise ValueError(f"{path}: `stages` must be a list drawn from {list(STAGE_CONFIGS)} and the preset's "
                         f"`stage:` sections, got {stages!r}")
    data["stages"] = stages
    data["kinds"] = {**{name: name for name in STAGE_CONFIGS}, **instances}
    return data


def stage_config(preset: dict[str, Any], stage: str, overrides: dict[str, Any] | None = None,
                 source: str = "config") -> Any:
    """Resolve one stage's config: preset section, then RUN_DIR defaults for paths, then flag overrides."""
    from hebrew_lm.stages import STAGE_CONFIGS

    kind = preset.get("kinds", {}).get(stage, stage)
    cls = STAGE_CONFIGS[kind]
    section = dict(preset.get(stage) or {})
    if not isinstance(preset.get(stage) or {}, dict):
        raise ValueError(f"{source}: section '{stage}' must be a mapping")
    section.pop("stage", None)
    run_dir = preset.get("run_dir")
    for key, sub in getattr(cls, "RUN_DIR_DEFAULTS", {}).items():
        if key == "output_dir":
            sub = stage  # every stage's folder is RUN_DIR/<its name in the preset>
        if not section.get(key) and run_dir:
            section[key] = [str(Path(run_dir) / s) for s in sub] if isinstance(sub, list) else str(Path(run_dir) / sub)
    if "stages" in {f.name for f in dataclasses.fields(cls)} and "stages" not in section and "stages" in preset:
        # a stage about the others (the report) reports the preset's stages, an instance as `name=stage`
        kinds = preset.get("kinds", {})
        section["stages"] = [s if s in STAGE_CONFIGS else f"{s}={kinds[s]}" for s in preset["stages"]
                             if s in STAGE_CONFIGS or s in kinds]
    for dotted, value in (overrides or {}).items():
        set_dotted(section, dotted, value)
    return from_dict(cls, section, f"{source}: {stage}")
