"""The curriculum stage's config: its phases and anchoring (`hebrew-lm cpt --help`)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from hebrew_lm.config import bounded, check_ranges
from hebrew_lm.decoder.config import DecoderConfig

TEXT_SCORERS = ("compression_ratio", "lexical_diversity", "mean_word_length", "rare_word_rate")
"""The difficulty scorers of text alone, computed for every corpus the curriculum reads (`hebrew_lm.cpt.difficulty`)."""
MODEL_SCORERS = ("base_loss",)
"""Scorers that need the base model: computed only when a phase asks for one."""


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
    f"""A difficulty scorer ({', '.join(TEXT_SCORERS)}, or {' or '.join(MODEL_SCORERS)}: the base model's own loss per token) whose quantile range picks this phase's documents; empty: no difficulty filter."""
    quantiles: list[float] = field(default_factory=lambda: [0.0, 1.0])
    """[low, high): the documents whose `difficulty` score lies in these quantiles of the corpus (0.0 to 1.0)."""
    anchor_share: float = bounded("[-1, 1)", -1.0)
    """Share of each batch's tokens drawn from the anchor corpus in this phase; -1: the stage's anchor_share."""
    replay_share: float = bounded("[0, 1)", 0.0)
    """Share of each batch's tokens replayed from the earlier phases' Hebrew documents (0 in the first phase, which has none)."""

    def __post_init__(self) -> None:
        if self.difficulty and self.difficulty not in (*TEXT_SCORERS, *MODEL_SCORERS):
            raise ValueError(f"phase {self.name!r}: difficulty must be one of {[*TEXT_SCORERS, *MODEL_SCORERS]}, "
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
    """Share of every batch's tokens drawn from the anchor corpus (published points: DictaLM 2.0 50%, DictaLM 3.0 25%, Swallow about 10%; Megatron's blend weights are the same token shares): the pieces per batch follow from the pools' mean piece lengths, a fractional count met on average over the steps; stats.json's phase table gives the share drawn."""
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
