"""The Megatron-Bridge handoff, checked with megatron-core's own readers (a test dependency): its indexed
datasets read back the very documents our stream trains on, and its blended GPT dataset builder, given a
phase's blend, draws the anchor share the CPU path's batches have, from that phase's documents."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from test_cpt import cpt_run  # noqa: F401 (the module's fixture, shared)

megatron = pytest.importorskip("megatron.core.datasets.indexed_dataset",
                               reason="megatron-core is not installed (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def handoff(cpt_run, tmp_path_factory):
    from hebrew_lm.presets import load_preset, stage_config
    from hebrew_lm.stages import STAGES

    out = tmp_path_factory.mktemp("megatron") / "out"
    preset = load_preset(cpt_run / "p.yaml")
    config = stage_config(preset, "megatron", {**preset["cpt"], "output_dir": str(out),
                                               "cache_dir": str(cpt_run / "run" / "cache")})
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
