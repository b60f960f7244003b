"""Masked-LM building blocks: model presets, the masked-position loss, dynamic and whole-word masking."""

import numpy as np
import pytest
import torch

from hebrew_lm.mlm.masking import Masker, mask_tokens
from hebrew_lm.mlm.model import build_model, masked_lm_loss, roberta_config


@pytest.mark.parametrize("preset, params", [("base", 126_031_648), ("large", 357_190_432)])
def test_paper_presets_have_the_papers_parameter_counts(preset, params):
    model = build_model(roberta_config(preset, vocab_size=52_000), device="meta")
    assert model.num_parameters() == params
    assert model.config.max_position_embeddings == 514


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model preset 'huge'"):
        roberta_config("huge", vocab_size=1000)


def test_masked_position_loss_equals_the_stock_loss():
    torch.manual_seed(0)
    model = build_model(roberta_config("tiny", vocab_size=500, max_seq_len=64)).eval()
    ids = torch.randint(5, 500, (4, 64))
    ids[:, 0], ids[:, -1] = 0, 2
    attention = torch.ones_like(ids)
    attention[3, 40:] = 0
    labels = torch.full_like(ids, -100)
    chosen = torch.rand(ids.shape) < 0.15
    chosen[:, 0] = chosen[:, -1] = False
    labels[chosen] = ids[chosen]
    with torch.no_grad():
        stock = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        ours = masked_lm_loss(model, ids, labels, attention)
        # packed sequences (no padding) go without a mask, as the pretraining loop calls it
        stock_unpadded = model(input_ids=ids[:3], attention_mask=attention[:3], labels=labels[:3]).loss
        ours_unpadded = masked_lm_loss(model, ids[:3], labels[:3])
    assert ours.item() == pytest.approx(stock.item(), rel=1e-5)
    assert ours_unpadded.item() == pytest.approx(stock_unpadded.item(), rel=1e-5)


def _masker(whole_word=False, probability=0.15):
    # tokens 0-4 special; even ids >= 6 start a word ('Ġ...'), odd ids continue one
    vocab = 1000
    is_special = torch.zeros(vocab, dtype=torch.bool)
    is_special[:5] = True
    starts = torch.zeros(vocab, dtype=torch.bool)
    starts[6::2] = True
    return Masker(vocab, 4, is_special, starts, probability, whole_word)


def test_dynamic_masking_proportions_and_specials():
    ids = torch.randint(5, 1000, (256, 128))
    ids[:, 0], ids[:, 64], ids[:, -1] = 0, 2, 2
    inputs, labels = mask_tokens(ids, _masker(), torch.Generator().manual_seed(0))
    chosen = labels != -100
    assert abs(chosen.float().mean().item() - 0.15 * 125 / 128) < 0.01
    assert not chosen[:, [0, 64, 127]].any()  # special tokens are never masked
    assert torch.equal(labels[chosen], ids[chosen])
    masked = (inputs == 4) & chosen
    kept = (inputs == ids) & chosen
    assert abs(masked.sum().item() / chosen.sum().item() - 0.8) < 0.02
    assert abs(kept.sum().item() / chosen.sum().item() - 0.1) < 0.02  # (random may hit the same id, rarely)
    assert (inputs[chosen & ~masked & ~kept] >= 5).all()  # random replacements are ordinary tokens
    assert torch.equal(inputs[~chosen], ids[~chosen])
    again, _ = mask_tokens(ids, _masker(), torch.Generator().manual_seed(0))
    other, _ = mask_tokens(ids, _masker(), torch.Generator().manual_seed(1))
    assert torch.equal(again, inputs) and not torch.equal(other, inputs)  # seeded, and fresh per draw


def test_whole_word_masking_masks_every_piece_of_a_word_together():
    g = torch.Generator().manual_seed(0)
    # words: a start token (even) followed by 0-3 continuation tokens (odd)
    rows = []
    for _ in range(64):
        row = [0]
        while len(row) < 127:
            row.append(6 + 2 * int(torch.randint(0, 400, (1,), generator=g)))
            row += [7 + 2 * int(torch.randint(0, 400, (1,), generator=g)) for _ in range(int(torch.randint(0, 4, (1,), generator=g)))]
        rows.append(row[:127] + [2])
    ids = torch.tensor(rows)
    _, labels = mask_tokens(ids, _masker(whole_word=True), torch.Generator().manual_seed(3))
    chosen = labels != -100
    for r in range(ids.shape[0]):
        word_chosen = None
        for t in range(1, ids.shape[1] - 1):
            if ids[r, t] % 2 == 0:  # a word starts
                word_chosen = chosen[r, t].item()
            else:
                assert chosen[r, t].item() == word_chosen
    assert 0.10 < chosen.float().mean().item() < 0.20
    assert not chosen[:, 0].any() and not chosen[:, -1].any()


def test_masker_from_a_real_tokenizer(tmp_path, hebrew_docs):
    from hebrew_lm.tokenizer.bpe import train_byte_level_bpe

    tok = train_byte_level_bpe(iter([hebrew_docs[:200]]), 1000, 2)
    masker = Masker.from_tokenizer(tok, whole_word=True)
    assert masker.mask_id == 4 and masker.is_special[:5].all() and not masker.is_special[5:].any()
    enc = tok.encode("בראשית ברא אלהים את השמים")
    starts = [masker.starts_word[i].item() for i in enc.ids]
    assert starts[0] is False  # <s>
    assert sum(starts) == 4  # every word but the first (no space before it) begins with 'Ġ'


@pytest.fixture(scope="module")
def corpus_and_tokenizer(tmp_path_factory, hebrew_docs):
    from helpers import corpus_and_tokenizer as make

    return make(tmp_path_factory.mktemp("mlm"), hebrew_docs[:300])


def test_token_store_holds_every_document_once_and_is_cached_by_what_made_it(corpus_and_tokenizer):
    from tokenizers import Tokenizer

    from hebrew_lm.corpus.shards import read_texts
    from hebrew_lm.engine.token_store import build_token_store, load_tokens

    root = corpus_and_tokenizer
    store = build_token_store(root / "corpus", root / "tok", "validation", root / "cache")
    tokens = load_tokens(store)
    assert tokens.dtype == "uint16"
    docs = list(read_texts(root / "corpus", "validation"))
    tok = Tokenizer.from_file(str(root / "tok" / "tokenizer.json"))
    pieces = np.split(np.asarray(tokens), np.where(np.asarray(tokens) == 2)[0] + 1)[:-1]
    assert len(pieces) == len(docs)
    assert [tok.decode(p[:-1].tolist()) for p in pieces] == docs
    mtime = (store / "tokens.bin").stat().st_mtime_ns
    assert build_token_store(root / "corpus", root / "tok", "validation", root / "cache") == store
    assert (store / "tokens.bin").stat().st_mtime_ns == mtime  # built once
    assert build_token_store(root / "corpus", root / "tok", "train", root / "cache") != store


def test_full_sentences_packing_has_no_padding_and_no_gaps(corpus_and_tokenizer):
    from hebrew_lm.mlm.data import PackedSequences
    from hebrew_lm.engine.token_store import build_token_store, load_tokens

    root = corpus_and_tokenizer
    store = build_token_store(root / "corpus", root / "tok", "train", root / "cache")
    data = PackedSequences(store, max_seq_len=64)
    tokens = np.asarray(load_tokens(store))
    assert len(data) == len(tokens) // 62
    for i in (0, 1, len(data) - 1):
        seq = data[i]
        assert seq.shape == (64,) and seq[0] == 0 and seq[-1] == 2
        assert seq[1:-1].tolist() == tokens[i * 62 : (i + 1) * 62].tolist()
    assert not (torch.stack([data[i] for i in range(len(data))]) == 1).any()  # no <pad> anywhere
    with pytest.raises(ValueError, match="fewer than one sequence"):
        PackedSequences(store, max_seq_len=len(tokens) + 10)


def test_fill_mask_scores_count_model_hits_and_the_unigram_baseline(tmp_path):
    """An oracle that always names the true token scores 1; the baseline is the share of masked
    positions holding the training split's most frequent ordinary token (counted here by hand)."""
    import json

    import numpy as np

    from hebrew_lm.mlm.masking import Masker
    from hebrew_lm.mlm.probe import fill_mask_scores

    vocab = 12
    is_special = torch.zeros(vocab, dtype=torch.bool)
    is_special[:4] = True
    masker = Masker(vocab, 3, is_special, torch.zeros(vocab, dtype=torch.bool))
    train = np.array([5] * 50 + [6] * 20 + list(range(4, 12)) * 2, dtype=np.uint16)
    (tmp_path / "tokens.bin").write_bytes(train.tobytes())
    (tmp_path / "meta.json").write_text(json.dumps({"dtype": "uint16", "num_tokens": len(train)}))
    rng = torch.Generator().manual_seed(1)
    sequences = [torch.randint(4, vocab, (32,), generator=rng) for _ in range(6)]

    class Oracle(torch.nn.Module):  # one batch of all six sequences: it knows what each mask hides
        def forward(self, input_ids):
            return type("Out", (), {"logits": torch.nn.functional.one_hot(torch.stack(sequences), vocab).float()})()

    got = fill_mask_scores(Oracle(), masker, sequences, tmp_path, sequences=6, batch_size=6)
    assert got["top1"] == 1.0 and got["top5"] == 1.0
    generator = torch.Generator().manual_seed(0)
    ids = torch.stack(sequences)
    chosen = (torch.rand(ids.shape, generator=generator) < 0.15) & ~is_special[ids]
    assert got["masked_positions"] == int(chosen.sum())
    assert got["unigram_top1"] == pytest.approx(float((ids[chosen] == 5).float().mean()))
