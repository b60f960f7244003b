"""The Megatron-Bridge handoff, checked with megatron-core's own readers (a test dependency): its indexed
datasets read back the very documents our stream trains on, and its blended GPT dataset builder, given a
phase's blend, draws the anchor share the CPU path's batches have, from that phase's documents."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from test_cpt import cpt_run  # noqa: F401 (the module's fixture, shared)

megatron = pytest.importorskip("megatron.core.datasets.indexed_dataset",
                               reason="megatron-core is not installed (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def handoff(cpt_run, tmp_path_factory):
    from hebrew_lm.presets import load_preset, stage_config
    from hebrew_lm.stages import STAGES

    out = tmp_path_factory.mktemp("megatron") / "out"
    preset = load_preset(cpt_run / "p.yaml")
    config = stage_config(preset, "megatron", {**preset["cpt"], "output_dir": str(out), "gpus_per_node": 2,
                                               "expert_parallel": 2, "cache_dir": str(cpt_run / "run" / "cache")})
    STAGES["megatron"].run(config)
    return out, config


def test_each_prefix_reads_back_the_documents_our_stream_trains_on(handoff, cpt_run):
    from hebrew_lm.corpus.shards import read_records
    from hebrew_lm.decoder.data import DocumentPieces
    from hebrew_lm.engine.token_store import token_store_name

    out, config = handoff
    run = cpt_run / "run"
    store = run / "cache" / token_store_name(run / "hebrew_corpus", run / "decoder" / "model", "train")
    pieces = DocumentPieces(store, 10**6)  # one piece a document: what the CPU path reads of each
    sources = [source for (source,) in read_records(run / "hebrew_corpus", "train", ("source",))]
    formal = megatron.IndexedDataset(str(out / "data" / "hebrew-formal"))
    expected = [pieces[i].tolist() for i in range(len(pieces)) if sources[pieces.documents[i]] == "formal"]
    assert len(formal) == len(expected) > 0
    assert [formal[i].tolist() for i in range(len(formal))] == expected
    assert formal[0][-1] == json.loads((store / "meta.json").read_text())["eos_id"]  # EOS after every document
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["ids_dtype"] == "uint16" and manifest["prefixes"]["data/hebrew-formal"]["documents"] == len(expected)
    assert {f["path"] for f in manifest["files"]} >= {"data/hebrew-formal.bin", "data/hebrew-formal.idx",
                                                      "blends/formal.json", "blends/hard.txt"}


def test_a_phases_blend_draws_its_anchor_share_from_its_own_documents(handoff):
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    out, config = handoff
    blend = json.loads((out / "blends" / "formal.json").read_text())["train"]
    weights, prefixes = [float(w) for w in blend[0::2]], [str(out / p) for p in blend[1::2]]
    assert prefixes[-1].endswith("data/anchor") and weights[-1] == config.anchor_share == 0.25
    tokenizer = SimpleNamespace(eod=1, pad=0, bos=None, vocab_size=400, unique_identifiers={"class": "test"})
    gpt = GPTDatasetConfig(random_seed=1234, sequence_length=32, blend_per_split=[(prefixes, weights), None, None],
                           path_to_cache=None, tokenizer=tokenizer, reset_position_ids=False,
                           reset_attention_mask=False, eod_mask_loss=False)
    train, _, _ = BlendedMegatronDatasetBuilder(GPTDataset, [2000, None, None], lambda: True, gpt).build()
    drawn = np.bincount(np.asarray(train.dataset_index[:2000]), minlength=len(prefixes)) / 2000
    assert abs(drawn[-1] - 0.25) <= 0.01  # the anchor share, within one percentage point over 2,000 samples
    assert [d.dataset.path_prefix for d in train.datasets] == prefixes  # the Hebrew: this phase's documents


def test_a_shuffled_curriculum_is_refused_when_the_config_loads(cpt_run):
    from hebrew_lm.presets import load_preset, stage_config

    preset = load_preset(cpt_run / "p.yaml")
    with pytest.raises(ValueError, match="megatron.curriculum: shuffled has no phases to hand off"):
        stage_config(preset, "megatron", {**preset["cpt"], "curriculum": "shuffled"})


def script_overrides(path) -> dict[str, str]:
    """KEY=VALUE arguments of a generated script, as bash would pass them (bash itself expands the script)."""
    import subprocess

    env = {"PATH": "/usr/bin:/bin", "MEGATRON_BRIDGE": "/opt/mb", "CHECKPOINTS": "/ckpt"}
    fake = path.parent / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "torchrun").write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    (fake / "torchrun").chmod(0o755)
    args = subprocess.run(["bash", str(path)], env={**env, "PATH": f"{fake}:{env['PATH']}"}, capture_output=True,
                          text=True, check=True).stdout.splitlines()
    return dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))


def test_the_scripts_run_each_phase_from_the_last_ones_weights_with_keys_the_pinned_sources_declare(handoff):
    """Every KEY=VALUE a script passes is in OVERRIDE_KEYS / SFT_OVERRIDE_KEYS, the table of where the pinned
    Megatron-Bridge and Megatron-LM sources declare each key. Megatron-Bridge cannot be imported here (Python
    3.12, CUDA), so the table itself is checked against those sources by scripts/check_megatron_bridge.py,
    not by this test (docs/scale.md: when it last ran, and what it found)."""
    import subprocess

    from hebrew_lm.megatron.launch import OVERRIDE_KEYS, SFT_OVERRIDE_KEYS

    out, config = handoff
    manifest = json.loads((out / "manifest.json").read_text())
    scripts = sorted((out / "scripts").glob("*.sh"))
    for script in scripts:
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0, script
    phases = [p["phase"] for p in manifest["phases"]]
    runs = [s for s in scripts if s.name[:2].isdigit() and s.name[:2] != "00"]
    assert [s.stem[3:] for s in runs] == phases + ["sft"]
    previous, total = "base", 0
    for script, phase in zip(runs, manifest["phases"]):
        keys = script_overrides(script)
        assert set(keys) <= set(OVERRIDE_KEYS), set(keys) - set(OVERRIDE_KEYS)
        assert keys["checkpoint.pretrained_checkpoint"] == f"/ckpt/{previous}"
        assert keys["checkpoint.save"] == f"/ckpt/{phase['phase']}"
        assert int(keys["train.train_iters"]) == phase["steps"]
        train = f"[[{','.join(f'{out}/{p}' for _, p in phase['train_blend'])}],[{','.join(f'{w:g}' for w, _ in phase['train_blend'])}]]"
        assert keys["dataset.blend_per_split"].startswith(f"[{train},")
        assert keys["model.hybrid_layer_pattern"] and int(keys["model.expert_model_parallel_size"]) == 2
        previous, total = phase["phase"], total + phase["steps"]
    assert total == config.max_steps
    sft = script_overrides(runs[-1])
    assert set(sft) <= set(SFT_OVERRIDE_KEYS) and sft["checkpoint.pretrained_checkpoint"] == f"/ckpt/{previous}"
    assert sft["dataset.dataset_root"] == f"{out}/sft"


def test_the_runs_learning_rates_follow_the_cpu_schedule_under_megatrons_own_scheduler(handoff):
    """Each run's overrides fed to megatron-core's OptimizerParamScheduler: the runs together give the CPU
    path's rate at every global step, to within one step's change (Megatron counts a step later in warm-up)."""
    import dataclasses

    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

    from hebrew_lm.cpt.mixture import allocate_steps
    from hebrew_lm.engine.optim import lr_factor
    from hebrew_lm.megatron.launch import run_schedule

    _, config = handoff
    for schedule in ("wsd", "decay"):
        c = dataclasses.replace(config, schedule=schedule, max_steps=40, warmup_steps=5, decay_fraction=0.3)
        start, tolerance = 0, c.learning_rate / 5 + 1e-9
        for steps in allocate_steps(c.max_steps, [p.share for p in c.phases]):
            end = start + steps
            o = run_schedule(c, start, end)
            optimizer = SimpleNamespace(param_groups=[{}])
            scheduler = OptimizerParamScheduler(
                optimizer, init_lr=0.0, max_lr=float(o["optimizer.lr"]), min_lr=float(o["optimizer.min_lr"]),
                lr_warmup_steps=o["scheduler.lr_warmup_iters"], lr_decay_steps=o.get("scheduler.lr_decay_iters", steps),
                lr_decay_style=o["scheduler.lr_decay_style"], start_wd=0.0, end_wd=0.0, wd_incr_steps=1,
                wd_incr_style="constant", wsd_decay_steps=o.get("scheduler.lr_wsd_decay_iters"),
                lr_wsd_decay_style=o.get("scheduler.lr_wsd_decay_style"))
            for step in range(start, end):
                scheduler.num_steps = step - start
                ours = c.learning_rate * lr_factor(step, c)
                assert abs(scheduler.get_lr({}) - ours) <= tolerance, (schedule, step, scheduler.get_lr({}), ours)
            start = end


def test_the_sft_run_reads_the_conversations_with_the_chat_template_and_rows_for_its_markers(handoff):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    out, config = handoff
    tokenizer = AutoTokenizer.from_pretrained(out / "tokenizer")
    assert "<|im_end|>" in tokenizer.chat_template and tokenizer.convert_tokens_to_ids("<|im_end|>") is not None
    rows = [json.loads(line) for line in (out / "sft" / "training.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows and all(set(r) == {"messages"} and r["messages"][-1]["role"] == "assistant" for r in rows)
    assert tokenizer.apply_chat_template(rows[0]["messages"], tokenize=False).count("<|im_start|>") == len(rows[0]["messages"])
    base = AutoConfig.from_pretrained(out / "base")  # the markers are new: the base grew rows for them
    assert base.vocab_size >= len(tokenizer) and base.vocab_size % 8 == 0
    grown = AutoModelForCausalLM.from_pretrained(out / "base").get_input_embeddings().weight
    assert torch.equal(grown[tokenizer.convert_tokens_to_ids("<|im_end|>")], grown[tokenizer.eos_token_id])  # as sft grows them
    stats = json.loads((out / "stats.json").read_text())
    assert stats["sft"]["training"] == len(rows) and stats["sft"]["validation"] > 0


def test_a_recipe_of_another_family_and_a_cluster_that_does_not_divide_are_refused(cpt_run, tmp_path):
    from hebrew_lm.presets import load_preset, stage_config
    from hebrew_lm.stages import STAGES

    preset = load_preset(cpt_run / "p.yaml")
    base = {**preset["cpt"], "output_dir": str(tmp_path / "out")}
    for override, message in (({"gpus_per_node": 8}, "global_batch_size: 4 is not a multiple of 8 data-parallel"),
                              ({"gpus_per_node": 6, "tensor_parallel": 4}, "do not divide into tensor x pipeline"),
                              ({"gpus_per_node": 2, "expert_parallel": 4}, "expert_parallel: 4 does not divide")):
        with pytest.raises(ValueError, match=message):
            stage_config(preset, "megatron", {**base, **override})
    config = stage_config(preset, "megatron", {**base, "gpus_per_node": 2, "expert_parallel": 2,
                                               "recipe": "llama3_8b_pretrain_config"})
    assert STAGES["megatron"].plan  # the registry's plan entry prints the runs (test_plan covers the text)
    config.init_from = str(tmp_path / "llama")
    from transformers import LlamaConfig

    LlamaConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2).save_pretrained(config.init_from)
    with pytest.raises(ValueError, match="sft_recipe: nemotron_3_nano_sft_8gpu_h100_bf16_config builds a NemotronH"):
        STAGES["megatron"].run(config)
    assert not (tmp_path / "out").exists()
