"""The curriculum's data: a Hebrew corpus cut into phases (by source, by a difficulty quantile, or both),
each phase's steps mixing its Hebrew pieces with a fixed share of anchor text (the base's own
language; shares count tokens, as Megatron's blends and the published mixes do), in an order that is a
pure function of (seed, position), so a resumed run, across a phase boundary or not, reads the very
same batches.

    data = curriculum_data(c, corpus_dir, tokenizer_dir, dist_, pad_id)   # an engine.runner.TrainingData

Sequence ids: the Hebrew pieces are 0 .. H-1 and the anchor pieces H .. H+A-1. Step s of phase p draws
pieces from p's pool, from the earlier phases' pools (replay) and from the anchor pool, as many of each
as give it its share of the tokens on average (`pieces_per_batch`), each through its own length-bucketed
`SequenceStream` (seeded by the phase), in that order.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hebrew_lm.engine.stream import Pool, StepStream

log = logging.getLogger("hebrew_lm")


@dataclass
class Phase:
    name: str
    first_step: int
    steps: int
    pool: np.ndarray
    """The Hebrew piece ids this phase draws from."""
    anchor_share: float
    replay_share: float = 0.0
    replay_pool: np.ndarray | None = None
    """The earlier phases' Hebrew pieces, replayed at replay_share of each batch."""


def select_documents(spec, scores: dict[str, Any]) -> np.ndarray:
    """A boolean per document: the phase's sources and its difficulty quantile range (quantiles of the
    whole split's scores)."""
    keep = np.ones(len(scores["source"]), dtype=bool)
    if spec.sources:
        keep &= np.isin(np.asarray(scores["source"]), spec.sources)
    if spec.difficulty:
        lo, hi = np.nanquantile(scores[spec.difficulty], spec.quantiles)  # unscored (NaN) documents: in no range
        values = scores[spec.difficulty]
        keep &= (values >= lo) & ((values < hi) if spec.quantiles[1] < 1 else (values <= hi))
    return keep


def plan_phases(c, piece_documents: np.ndarray, scores: dict[str, Any]) -> list[Phase]:
    """The phases in the order they run (`c.curriculum`), each with its steps and pool of pieces."""
    specs = list(c.phases)
    pools = []
    for spec in specs:
        documents = np.flatnonzero(select_documents(spec, scores))
        pool = np.flatnonzero(np.isin(piece_documents, documents))
        if len(pool) == 0:
            raise ValueError(f"cpt.phases: phase {spec.name!r} selects no document of {c.corpus_dir} "
                             f"(sources {spec.sources or 'any'}, {spec.difficulty or 'no difficulty'} {spec.quantiles})")
        pools.append(pool)
    if c.curriculum == "shuffled":  # no phases: every phase's documents from the start
        return [Phase("shuffled", 0, c.max_steps, np.unique(np.concatenate(pools)), c.anchor_share)]
    order = phase_order(c)
    steps = allocate_steps(c.max_steps, [spec.share for spec in specs])
    phases, first = [], 0
    for n, i in enumerate(order):
        earlier = np.unique(np.concatenate([pools[j] for j in order[:n]])) if n else None
        replay = specs[i].replay_share if n else 0.0
        phases.append(Phase(specs[i].name, first, steps[i], pools[i], c.resolved_anchor_share(specs[i]), replay, earlier))
        first += steps[i]
    return phases


def phase_order(c) -> list[int]:
    """The phases' indices in the order they run: as listed, or the last first (`curriculum: reversed`)."""
    order = list(range(len(c.phases)))
    return order[::-1] if c.curriculum == "reversed" else order


def allocate_steps(total: int, shares: list[float]) -> list[int]:
    """`total` steps split in proportion to `shares`, exactly: every phase gets one step, the rest go by the
    largest remainder (Hamilton's method), so the counts sum to `total` and none is zero or negative."""
    if total < len(shares):
        raise ValueError(f"cpt.max_steps {total} is fewer than the {len(shares)} phases; every phase needs a step")
    spare = total - len(shares)
    exact = [spare * share / sum(shares) for share in shares]
    steps = [1 + int(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for i in by_remainder[:total - sum(steps)]:
        steps[i] += 1
    return steps


def pieces_per_batch(batch: int, shares: dict[str, float], mean_lengths: dict[str, float]) -> dict[str, float]:
    """Pieces a batch takes from each pool, on average, so that each pool's share of the batch's tokens
    is its share: a pool's count goes as share / mean piece length (anchor pieces three times as long as
    the Hebrew ones get a third of the count). At least one Hebrew piece a batch is left, on average."""
    weights = {k: share / mean_lengths[k] for k, share in shares.items() if share > 0}
    counts = {k: batch * w / sum(weights.values()) for k, w in weights.items()}
    others = sum(v for k, v in counts.items() if k != "hebrew")
    if others > batch - 1:  # whole pieces: the Hebrew pool keeps one (stats.json gives the shares drawn)
        counts = {k: v * (batch - 1) / others for k, v in counts.items() if k != "hebrew"}
        counts["hebrew"] = 1.0
    return {k: float(counts.get(k, 0.0)) for k in ("hebrew", "replay", "anchor")}


class MixtureStream(StepStream):
    """The engine's stream for the curriculum: each step's batch is its phase's Hebrew, replay and anchor
    pools, their shares counted in tokens (`pieces_per_batch`): a fractional count of pieces per batch is
    met on average: a pool that gets x pieces a batch gives step k floor((k + 1) x) - floor(k x) of them."""

    def __init__(self, phases: list[Phase], hebrew_lengths: np.ndarray, anchor_lengths: np.ndarray | None,
                 batch: int, seed: int, bucketing: bool = True) -> None:
        """`bucketing`: each pool's pieces come in length-bucketed batches (a step's Hebrew pieces are of
        about one length: little padding, but steps of very different token counts); False: plain
        shuffles, every step a random sample of the lengths (runs of one recipe then train on about
        the same number of tokens)."""
        self.phases, self.batch, self.offset = phases, batch, len(hebrew_lengths)
        self.lengths = hebrew_lengths if anchor_lengths is None else np.concatenate([hebrew_lengths, anchor_lengths])

        def by_length(lengths: np.ndarray) -> np.ndarray | None:
            return lengths if bucketing else None

        self.parts: list[dict[str, Pool]] = []
        self.slots: list[dict[str, float]] = []
        """Each phase's pieces per batch (on average) from its own pool, the replay pool and the anchor pool."""
        for p, phase in enumerate(phases):
            shares = {"anchor": phase.anchor_share if anchor_lengths is not None else 0.0,
                      "replay": phase.replay_share if phase.replay_pool is not None else 0.0}
            shares["hebrew"] = 1.0 - shares["anchor"] - shares["replay"]
            lengths = {"hebrew": hebrew_lengths[phase.pool].mean(),
                       "replay": hebrew_lengths[phase.replay_pool].mean() if shares["replay"] else 1.0,
                       "anchor": anchor_lengths.mean() if shares["anchor"] else 1.0}
            slots = pieces_per_batch(batch, shares, lengths)
            self.slots.append(slots)
            x_replay, x_anchor = slots["replay"], slots["anchor"]
            parts = {"hebrew": Pool(phase.pool, max(1, round(slots["hebrew"])), seed + 101 * p, by_length(hebrew_lengths[phase.pool]),
                                    first=lambda k, a=x_anchor, r=x_replay: k * batch - math.floor(k * a) - math.floor(k * r))}
            if x_replay:
                parts["replay"] = Pool(phase.replay_pool, round(x_replay), seed + 101 * p + 25,
                                       by_length(hebrew_lengths[phase.replay_pool]), first=lambda k, r=x_replay: math.floor(k * r))
            if x_anchor:
                parts["anchor"] = Pool(self.offset + np.arange(len(anchor_lengths)), round(x_anchor), seed + 101 * p + 50,
                                       by_length(anchor_lengths), first=lambda k, a=x_anchor: math.floor(k * a))
            self.parts.append(parts)

    def phase_of(self, step: int) -> int:
        for p, phase in enumerate(self.phases):
            if step < phase.first_step + phase.steps:
                return p
        return len(self.phases) - 1  # past the end (a spike's skip): the last phase goes on

    def step_indices(self, step: int) -> list[int]:
        p = self.phase_of(step)
        ids = [i for pool in self.parts[p].values() for i in pool.draw(step - self.phases[p].first_step)]
        # sorted by length, so its micro-batches pad little (the engine weighs them by their tokens)
        return sorted(ids, key=lambda i: self.lengths[i])


def validation(c, hebrew_val, val_sources: np.ndarray, anchor_val, tokenizer_dir: Path, dist_, pad_id: int):
    """The curriculum's validation: Hebrew loss and bits per byte (overall and per source), the anchor
    language's, and with `loss_by_position` the Hebrew loss by position of the predicted token."""
    from hebrew_lm.decoder.stage import evaluate, text_bytes_of

    sources = sorted(set(val_sources[hebrew_val.documents].tolist())) if len(hebrew_val) else []

    n = c.loss_by_position
    position_ranges = [(k * c.max_seq_len // n, (k + 1) * c.max_seq_len // n) for k in range(n)]
    full_length = np.flatnonzero(hebrew_val.lengths() == c.max_seq_len) if n else np.zeros(0, dtype=np.int64)
    if n and not len(full_length):
        log.warning("cpt.loss_by_position: no Hebrew validation piece is %d tokens long; not measured", c.max_seq_len)

    text_bytes = text_bytes_of(tokenizer_dir)

    def validate(module, autocast) -> dict[str, float]:
        # the loss per token, and bits per byte on the same pieces (comparable across tokenizers)
        losses: dict[str, float] = {}
        if len(sources) < 2:
            losses["val_loss"], losses["val_bpb"] = evaluate(module, hebrew_val, c, dist_, pad_id, autocast,
                                                             text_bytes=text_bytes)
        else:  # eval_batches split among the sources, each piece scored once: the overall numbers pool them
            pooled: list[list[float]] = []
            per_source = max(1, c.eval_batches // len(sources))
            for source in sources:
                pieces = np.flatnonzero(val_sources[hebrew_val.documents] == source)
                totals: list[float] = []
                losses[f"val_loss/{source}"], losses[f"val_bpb/{source}"] = evaluate(
                    module, hebrew_val, c, dist_, pad_id, autocast, pieces, text_bytes=text_bytes,
                    batches=per_source, totals=totals)
                pooled.append(totals)
            bits, nbytes, tokens = (sum(t[k] for t in pooled) for k in range(3))
            losses["val_loss"] = dist_.mean(bits * math.log(2) / max(tokens, 1))  # per token, over every piece
            losses["val_bpb"] = dist_.mean(bits / max(nbytes, 1))
        if anchor_val is not None and len(anchor_val):
            losses["anchor_loss"], losses["anchor_bpb"] = evaluate(module, anchor_val, c, dist_, pad_id, autocast,
                                                                   text_bytes=text_bytes)
        for lo, hi in position_ranges if len(full_length) else []:
            losses[f"val_loss@{lo}-{hi}"] = evaluate(module, hebrew_val, c, dist_, pad_id, autocast, full_length, (lo, hi))
        return losses

    return validate


def curriculum_data(c, corpus_dir: Path, tokenizer_dir: Path, dist_, pad_id: int):
    """The curriculum stage's TrainingData: phases of the Hebrew corpus mixed with the anchor corpus;
    validation losses on Hebrew (overall and per source) and on the anchor language, from step 0."""
    from hebrew_lm.cpt.difficulty import agreement, base_loss_scores, by_source, difficulty_scores
    from hebrew_lm.decoder.data import DocumentPieces, base_bos
    from hebrew_lm.engine.runner import TrainingData
    from hebrew_lm.corpus.works import related_units
    from hebrew_lm.engine.folder import token_stores

    train_store, val_store = token_stores(corpus_dir, tokenizer_dir, c.cache_dir, dist_)
    units = {split: related_units(corpus_dir, split) if c.join_related else None for split in ("train", "validation")}
    bos = base_bos(c.tokenizer_dir)  # documents start as the base's tokenizer starts a text (Gemma: <bos>)
    hebrew = DocumentPieces(train_store, c.max_seq_len, units["train"], bos=bos)
    hebrew_val = DocumentPieces(val_store, c.max_seq_len, units["validation"], bos=bos)
    scores = difficulty_scores(corpus_dir, "train", c.cache_dir)
    if any(p.difficulty == "base_loss" for p in c.phases):
        scores["base_loss"] = base_loss_scores(train_store, c.init_from, c.cache_dir, len(scores["source"]),
                                               c.max_seq_len)
    val_sources = np.asarray(difficulty_scores(corpus_dir, "validation", c.cache_dir)["source"])
    phases = plan_phases(c, hebrew.documents, scores)
    anchored = any(p.anchor_share > 0 for p in phases)
    anchor = anchor_val = None
    if c.anchor_corpus_dir:  # its validation loss measures forgetting even when none of it is mixed in
        a_train, a_val = token_stores(Path(c.anchor_corpus_dir), tokenizer_dir, c.cache_dir, dist_)
        anchor, anchor_val = DocumentPieces(a_train, c.max_seq_len, bos=bos), DocumentPieces(a_val, c.max_seq_len, bos=bos)
    stream = MixtureStream(phases, hebrew.lengths(), anchor.lengths() if anchored else None, c.global_batch_size,
                           c.seed, c.length_bucketing)
    offset = len(hebrew)

    def sequence(i: int):
        return hebrew[i] if i < offset else anchor[i - offset]

    lengths = np.concatenate([hebrew.lengths(), anchor.lengths()]) if anchor else hebrew.lengths()
    validate = validation(c, hebrew_val, val_sources, anchor_val, tokenizer_dir, dist_, pad_id)

    def summarize(out: Path, records: list[dict]) -> dict[str, Any]:
        evals = [r for r in records if "val_loss" in r]
        start, end = (evals[0], evals[-1]) if evals else ({}, {})
        table = []
        for phase in phases:
            last = [r for r in evals if r["step"] <= phase.first_step + phase.steps]
            table.append({"phase": phase.name, "first_step": phase.first_step, "steps": phase.steps,
                          "hebrew_pieces_in_pool": int(len(phase.pool)), "anchor_share": phase.anchor_share,
                          "replay_share": phase.replay_share,
                          **phase_tokens(stream, phase, lengths),
                          "val_loss_at_end": last[-1]["val_loss"] if last else None,
                          "anchor_loss_at_end": last[-1].get("anchor_loss") if last else None})
        plot_curriculum(evals, phases, out / "curriculum.png")
        by_position = {when: {k.split("@", 1)[1]: v for k, v in r.items() if k.startswith("val_loss@")}
                       for when, r in (("base", start), ("final", end))}
        if by_position["final"]:
            plot_loss_by_position(by_position, out / "loss_by_position.png")
        return {"phases": table, "curriculum": c.curriculum, "init_from": c.init_from,
                "base_val_loss": start.get("val_loss"), "base_anchor_loss": start.get("anchor_loss"),
                "final_anchor_loss": end.get("anchor_loss"),
                "bits_per_byte": {key: {"base": start.get(key), "final": end.get(key)}
                                  for key in sorted(k for k in start if "_bpb" in k)},
                "forgetting": (end["anchor_loss"] - start["anchor_loss"]) if "anchor_loss" in start else None,
                "hebrew_gain": (start["val_loss"] - end["val_loss"]) if evals else None,
                "difficulty_agreement": agreement(scores), "difficulty_by_source": by_source(scores),
                "max_seq_len": c.max_seq_len, "join_related": c.join_related,
                "loss_by_position": by_position if by_position["final"] else None}

    describe = (f"{len(phases)} phase(s) ({', '.join(f'{p.name}: {p.steps} steps, {len(p.pool)} pieces' for p in phases)})"
                f" of {len(hebrew)} Hebrew pieces" + (f", anchored on {len(anchor)} pieces of {c.anchor_corpus_dir}"
                                                       if anchored else ", no anchor text mixed in"))
    return TrainingData(offset + (len(anchor) if anchor else 0), sequence, lengths, validate, stream=stream,
                        describe=describe, evaluate_first=True, summarize=summarize,
                        stats={"train_pieces": len(hebrew), "train_documents": hebrew.num_documents,
                               "anchor_pieces": len(anchor) if anchor else 0})


def phase_tokens(stream: MixtureStream, phase: Phase, lengths: np.ndarray) -> dict[str, Any]:
    """What the phase's steps read, measured: Hebrew, replayed and anchor tokens (real tokens, padding not
    counted), the anchor's and the replay's shares of them (the configured shares, met to within a piece
    or two) and the anchor pieces per batch."""
    p = stream.phases.index(phase)
    tokens = {name: 0 for name in ("hebrew", "replay", "anchor")}
    for step in range(phase.steps):
        for name, pool in stream.parts[p].items():
            tokens[name] += int(lengths[pool.draw(step)].sum())
    total = sum(tokens.values())
    return {"hebrew_tokens": tokens["hebrew"] + tokens["replay"], "anchor_tokens": tokens["anchor"],
            "anchor_share_drawn": round(tokens["anchor"] / total, 4) if total else None,
            "replay_share_drawn": round(tokens["replay"] / total, 4) if total else None,
            "anchor_pieces_per_batch": round(stream.slots[p]["anchor"], 3)}


def plot_curriculum(evals: list[dict], phases: list[Phase], path: Path) -> None:
    """Hebrew and anchor validation loss against steps, each phase shaded and named."""
    from hebrew_lm.plots import pyplot

    plt = pyplot()

    if not evals:
        return
    fig, ax = plt.subplots(figsize=(7, 3.6))
    steps = [r["step"] for r in evals]
    ax.plot(steps, [r["val_loss"] for r in evals], marker="o", label="Hebrew validation loss")
    for key in sorted({k for r in evals for k in r if k.startswith("val_loss/")}):
        ax.plot(steps, [r.get(key) for r in evals], linestyle=":", label=key.split("/", 1)[1])
    if any("anchor_loss" in r for r in evals):
        ax.plot(steps, [r.get("anchor_loss") for r in evals], marker="s", label="anchor validation loss")
        ax.axhline(evals[0].get("anchor_loss", float("nan")), color="gray", linewidth=0.8, linestyle="--",
                   label="anchor loss of the base")
    for n, phase in enumerate(phases):
        ax.axvspan(phase.first_step, phase.first_step + phase.steps, alpha=0.08 if n % 2 else 0.16, color="tab:blue")
        ax.text(phase.first_step + phase.steps / 2, 1.01, phase.name, transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (next token)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_loss_by_position(by_position: dict[str, dict[str, float]], path: Path) -> None:
    """Hebrew validation loss by position range, the base against the trained model: falling with
    position means the model uses the context before it."""
    from hebrew_lm.plots import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 3.4))
    for when, label in (("base", "before (the base)"), ("final", "after this run")):
        ranges = list(by_position[when])
        ax.plot(range(len(ranges)), [by_position[when][r] for r in ranges], marker="o", label=label)
    ax.set_xticks(range(len(ranges)), [f"{r}" for r in ranges], fontsize=8)
    ax.set_xlabel("positions of the predicted tokens")
    ax.set_ylabel("Hebrew validation loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
