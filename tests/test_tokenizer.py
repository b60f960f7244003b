"""The tokenizer stage: training, the Hugging Face folder, normalization at encode time, bad input, audit."""

import json
import logging

import pytest
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

from hebrew_lm.tokenizer.config import TokenizerConfig
from hebrew_lm.text.normalize import Normalizer, hf_normalizer
from hebrew_lm.tokenizer.audit import HFCandidate, load_candidate, morph_alignment
from hebrew_lm.tokenizer.morphemes import MorphWord, gold_boundaries, read_conllu_words
from hebrew_lm.tokenizer.train import run

from helpers import build


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, hebrew_docs):
    root = tmp_path_factory.mktemp("tok")
    path = root / "in.jsonl"
    modern = ["צה״ל הודיע היום כי ד״ר כהן ימונה לראש אגף המחקר והפיתוח בשנת 2024",
              "הממשלה אישרה את תקציב Google Cloud לשנה הבאה, כך נמסר בהודעה רשמית 🙂"] * 3
    with open(path, "w", encoding="utf-8") as f:
        for d in hebrew_docs[:700] + modern:
            f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
    build(root / "corpus", [path], validation_fraction=0.1)
    return root / "corpus"


@pytest.fixture(scope="module")
def tokenizer_dir(corpus):
    out = corpus.parent / "tokenizer"
    run(TokenizerConfig(corpus_dir=str(corpus), output_dir=str(out), vocab_size=2000,
                        baseline_sample_bytes=1_000_000, audit_max_docs=60))
    return out


def test_folder_loads_with_autotokenizer_and_has_robertas_special_tokens(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    assert tok.convert_ids_to_tokens(range(5)) == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, tok.mask_token_id) == (0, 1, 2, 3, 4)
    assert len(tok) == 2000 and tok.model_max_length == 512
    ids = tok("שלום עולם").input_ids
    assert ids[0] == 0 and ids[-1] == 2
    pair = tok("שלום", "עולם").input_ids
    assert pair[0] == 0 and pair.count(2) == 3 and pair[-1] == 2  # <s> A </s></s> B </s>
    masked = tok("שלום <mask> עולם", add_special_tokens=False).input_ids
    assert 4 in masked and tok.convert_ids_to_tokens(masked[masked.index(4) - 1]) != "Ġ"  # <mask> takes its space


@pytest.mark.parametrize(
    "raw",
    [
        "מלך ארץ שלום כף אף ציץ",
        "צה״ל ודו״ח של ד\"ר כהן",
        "ג׳ירפה, ז׳ורנל וצ'יפס",
        "בשנת 1948 נמכרו 3,999 ספרים ב-12.5 ₪",
        "הוא עובד ב-Google וב-Microsoft Research",
        "איזה יום יפה 🙂👍 👨‍👩‍👧",
        "בְּרֵאשִׁ֖ית בָּרָ֣א אֱלֹהִ֑ים אֵ֥ת הַשָּׁמַ֖יִם",
        "\u200fשלום\u200e  עולם\u00a0ומלואו",
        "שורה ראשונה\nשורה שנייה",
    ],
)
def test_encode_decode_round_trips_to_the_normalized_text(tokenizer_dir, raw):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    ids = tok(raw, add_special_tokens=False).input_ids
    assert tok.decode(ids) == Normalizer()(raw)


def test_the_tokenizer_normalizes_exactly_as_the_corpus_did(hebrew_docs):
    hf = hf_normalizer()
    py = Normalizer()
    cases = [d for d in hebrew_docs[:200]] + [
        "\ufeffצה״ל\u200f\u202bעולם\u202c", "a\r\nb\u2028c\u00a0\u2003d", "x \n\n\n\n y", "ש\u200dל\u200cום 👨\u200d👩",
        "בית\u05beהמקדש “ציטוט” ‘ציטוט’", "\ufb2a\ufb35", "\t טאב  ורווחים \t",
    ]
    from hebrew_lm.embedded.sources import read

    pointed = [d.text for d in read("scriptures", "t")][:30]  # raw, with niqqud and te'amim
    for text in cases + pointed:
        assert hf.normalize_str(text).strip() == py(text), text[:40]


def test_normalization_is_recorded_in_the_folder(tokenizer_dir, corpus):
    recorded = json.loads((tokenizer_dir / "normalization.json").read_text())
    assert recorded["strip_niqqud"] is True and recorded["unify_quotes"] is True
    saved = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    assert saved["normalizer"]["type"] == "Sequence"


def test_the_tokenizer_follows_the_corpus_normalization_not_the_defaults(tmp_path, hebrew_docs):
    """A corpus built keeping niqqud gives a tokenizer that keeps it too (a tokenizer that ignored the
    corpus's rules would strip it, as the defaults do)."""
    from transformers import AutoTokenizer

    from hebrew_lm.embedded.sources import read

    pointed = [d.text for d in read("scriptures", "t")][:40]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in pointed), encoding="utf-8")
    from hebrew_lm.text.normalize import NormalizeConfig

    build(tmp_path / "corpus", [path], normalize=NormalizeConfig(strip_niqqud=False))
    run(TokenizerConfig(corpus_dir=str(tmp_path / "corpus"), output_dir=str(tmp_path / "tok"), vocab_size=600,
                        audit=False))
    assert json.loads((tmp_path / "tok" / "normalization.json").read_text())["strip_niqqud"] is False
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    text = "בְּרֵאשִׁ֖ית בָּרָ֣א"
    assert tok.decode(tok(text, add_special_tokens=False).input_ids) == "בְּרֵאשִׁית בָּרָא"  # points kept, te'amim not


def test_rerun_is_a_noop(tokenizer_dir, corpus, caplog):
    caplog.set_level(logging.INFO, logger="hebrew_lm")
    before = (tokenizer_dir / "tokenizer.json").stat().st_mtime_ns
    run(TokenizerConfig(corpus_dir=str(corpus), output_dir=str(tokenizer_dir), vocab_size=2000,
                        baseline_sample_bytes=1_000_000, audit_max_docs=60))
    assert "nothing to do" in caplog.text
    assert (tokenizer_dir / "tokenizer.json").stat().st_mtime_ns == before


def test_bad_input_is_a_clear_error(tmp_path, corpus, hebrew_docs):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "manifest.json").write_text("{}")
    with pytest.raises(ValueError, match="not a finished corpus stage"):
        run(TokenizerConfig(corpus_dir=str(tmp_path / "half"), output_dir=str(tmp_path / "t"), vocab_size=1000))
    with pytest.raises(ValueError, match="corpus folder not found"):
        run(TokenizerConfig(corpus_dir=str(tmp_path / "nope"), output_dir=str(tmp_path / "t"), vocab_size=1000))
    with pytest.raises(ValueError, match="larger than the 256 byte symbols"):
        TokenizerConfig(corpus_dir="c", output_dir="t", vocab_size=200)
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps({"text": d}, ensure_ascii=False) for d in hebrew_docs[:20]) + "\n")
    build(tmp_path / "val_only", [path], validation_fraction=0.9999)
    with pytest.raises(ValueError, match="no training documents"):
        run(TokenizerConfig(corpus_dir=str(tmp_path / "val_only"), output_dir=str(tmp_path / "t"), vocab_size=1000))


def test_gold_boundaries_follow_what_is_written():
    assert gold_boundaries("לישראל", ["ל", "ישראל"]) == (1,)
    assert gold_boundaries("וכשהם", ["ו", "כש", "הם"]) == (1, 3)
    assert gold_boundaries("בבית", ["ב", "ה", "בית"]) == (1,)  # the article is not written
    assert gold_boundaries("שלו", ["של", "הוא"]) == (2,)  # the suffix is not spelled הוא
    assert gold_boundaries("ספר", ["ספר"]) == ()


def test_read_conllu_words(tmp_path):
    (tmp_path / "t.conllu").write_text(
        "# sent_id = 1\n# set = test\n"
        "1-2\tלישראל\t_\t_\t_\t_\t_\t_\t_\t_\n1\tל\tל\tADP\t_\t_\t0\t_\t_\t_\n2\tישראל\tישראל\tPROPN\t_\t_\t1\t_\t_\t_\n"
        "3\tהיום\tהיום\tADV\t_\t_\t0\t_\t_\t_\n\n"
        "# sent_id = 2\n# set = train\n1\tלא\tלא\tADV\t_\t_\t0\t_\t_\t_\n\n", encoding="utf-8")
    assert read_conllu_words(tmp_path / "t.conllu", sets=("test",)) == [
        MorphWord("לישראל", (1,), True), MorphWord("היום", (), False)]
    assert len(read_conllu_words(tmp_path / "t.conllu")) == 3


def test_read_nemo_token_multi_with_its_morph_file(tmp_path):
    from hebrew_lm.tokenizer.morphemes import read_morph_words

    (tmp_path / "token-multi_gold_dev.bmes").write_text("מתאילנד O^S-GPE\nהיום O\n\nוכשהם O^O^O\n", encoding="utf-8")
    (tmp_path / "morph_gold_dev.bmes").write_text("מ O\nתאילנד S-GPE\nהיום O\n\nו O\nכש O\nהם O\n", encoding="utf-8")
    assert read_morph_words(tmp_path / "token-multi_gold_dev.bmes") == [
        MorphWord("מתאילנד", (1,), True), MorphWord("היום", (), False), MorphWord("וכשהם", (1, 3), True)]
    (tmp_path / "morph_gold_dev.bmes").write_text("מ O\nתאילנד S-GPE\n", encoding="utf-8")
    with pytest.raises(ValueError, match="fewer morphemes"):
        read_morph_words(tmp_path / "token-multi_gold_dev.bmes")


def _toy(split_chars: bool) -> HFCandidate:
    words = ["לישראל", "וכשהם", "היום"]
    chars = sorted({c for w in words for c in w} | {" "})
    if split_chars:
        tok = Tokenizer(models.WordLevel({c: i for i, c in enumerate(chars + ["[UNK]"])}, unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), "isolated")
    else:
        tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words + ["[UNK]"])}, unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.normalizer = normalizers.Strip()
    return HFCandidate(tok, "toy")


def test_morph_alignment_of_known_tokenizers():
    words = [MorphWord("לישראל", (1,), True), MorphWord("וכשהם", (1, 3), True), MorphWord("היום", (), False)]
    chars = morph_alignment(_toy(split_chars=True), words)
    assert chars["morph_recall_all"] == 1.0
    assert chars["morph_precision_all"] == pytest.approx(3 / (5 + 4 + 3))  # every character boundary is a cut
    whole = morph_alignment(_toy(split_chars=False), words)
    assert whole["morph_recall_all"] == 0.0


def test_stage_audit_has_our_tokenizer_and_the_baselines(tokenizer_dir):
    rows = json.loads((tokenizer_dir / "audit" / "audit.json").read_text())
    names = [r["tokenizer"] for r in rows]
    assert names == ["hebrew-lm byte-level BPE (char-aligned)", "plain byte-level BPE (paper)", "sentencepiece bpe",
                     "sentencepiece unigram", "English byte-level BPE"]
    ours, english = rows[0], rows[-1]
    assert ours["roundtrip_share"] == 1.0 and ours["fallback_rate"] < 0.01
    assert ours["fertility"] < english["fertility"] / 2  # a Hebrew vocabulary packs Hebrew far better
    for name in ("audit.md", "audit.csv", "audit.png"):
        assert (tokenizer_dir / "audit" / name).stat().st_size > 0
    assert json.loads((tokenizer_dir / "stats.json").read_text())["audit"][0]["tokenizer"] == names[0]


def test_char_aligned_bpe_has_no_half_letters_and_plain_bpe_does(hebrew_docs):
    """Plain byte-level BPE learns merges across the two bytes of Hebrew letters; the aligned one
    spends no token on a fragment of a character, and both round-trip any text."""
    from hebrew_lm.tokenizer.bpe import train_byte_level_bpe

    from hebrew_lm.tokenizer.bpe import bytes_to_unicode

    to_byte = {ch: b for b, ch in bytes_to_unicode().items()}
    texts = [d.replace("\n", " ") for d in hebrew_docs[:400]]
    fragments = {}
    for aligned in (True, False):
        tok = train_byte_level_bpe(iter([texts]), 3000, 2, char_aligned=aligned)
        assert tok.get_vocab_size() == 3000
        # a token that starts with a UTF-8 continuation byte begins in the middle of a character
        starts = [to_byte[tok.id_to_token(i)[0]] for i in range(261, 3000)]
        fragments[aligned] = sum(1 for i, b in zip(range(261, 3000), starts) if 0x80 <= b <= 0xBF
                                 and len(tok.id_to_token(i)) > 1)
        for text in ["בראשית ברא אלהים", "日本語 🙂 x"]:
            assert tok.decode(tok.encode(text, add_special_tokens=False).ids) == text
    assert fragments[True] == 0
    assert fragments[False] > 0


def test_audit_command_compares_any_tokenizers(tmp_path, tokenizer_dir, corpus):
    from hebrew_lm.cli import main

    spm_model = tokenizer_dir / "audit" / "baselines" / "sentencepiece-unigram.model"
    text = tmp_path / "held_out.txt"
    text.write_text("צהל הודיע היום על תרגיל גדול בצפון\nהממשלה התכנסה לישיבה מיוחדת בירושלים\n", encoding="utf-8")
    code = main(["tokenizer", "audit", "--tokenizers", str(tokenizer_dir), str(spm_model), "--names", "ours", "spm",
                 "--text", str(text), "--output_dir", str(tmp_path / "audit")])
    assert code == 0
    rows = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert [r["tokenizer"] for r in rows] == ["ours", "spm"]
    # The numbers are the tokenizers' own, counted here by hand: on text of plain words and single spaces,
    # a byte-level BPE's tokens all belong to words, so fertility is tokens / words.
    from transformers import AutoTokenizer

    lines = text.read_text(encoding="utf-8").split("\n")[:2]
    words = sum(len(line.split()) for line in lines)
    hf = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    tokens = sum(len(hf(line, add_special_tokens=False).input_ids) for line in lines)
    assert rows[0]["words"] == words and rows[0]["fertility"] == pytest.approx(tokens / words)
    assert rows[1]["fertility"] != rows[0]["fertility"]
    assert load_candidate(str(spm_model)).vocab_size == 2000
    assert load_candidate(str(tokenizer_dir / "tokenizer.json")).vocab_size == load_candidate(str(tokenizer_dir)).vocab_size


QUOTING = 'באתר נכתב "<mask>" ואחריו </s> וגם <s> <pad> <unk> כפי שמופיע בקוד המקור של הדף'


def test_special_token_strings_in_user_text_are_text_in_the_store_and_in_fine_tuning(tokenizer_dir, tmp_path, hebrew_docs):
    from transformers import AutoTokenizer

    from hebrew_lm.records import Sentence
    from hebrew_lm.finetune.encode import word_pieces
    from hebrew_lm.engine.token_store import build_token_store, load_tokens

    from helpers import write_jsonl

    hf = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    specials = set(hf.all_special_ids)
    # The pretraining token store: each document's only special id is the </s> that ends it.
    corpus = tmp_path / "corpus"
    build(corpus, [write_jsonl(tmp_path / "q.jsonl", [QUOTING, *hebrew_docs[:5]])])
    store = build_token_store(corpus, tokenizer_dir, "train", tmp_path / "cache")
    tokens = [int(t) for t in load_tokens(store)]
    meta = json.loads((store / "meta.json").read_text())
    assert [t for t in tokens if t in specials] == [hf.eos_token_id] * meta["num_documents"]
    # Those ids decode back to the text, quoted specials included.
    docs, start = [], 0
    for i, t in enumerate(tokens):
        if t == hf.eos_token_id:
            docs.append(hf.decode(tokens[start:i]))
            start = i + 1
    assert QUOTING in docs
    # Fine-tuning words: `<mask>` as a word is text, and round-trips.
    pieces = word_pieces(hf, [Sentence(["<mask>", "</s>", "שלום"], ["O", "O", "O"])])[0]
    assert not {i for p in pieces for i in p} & specials
    assert hf.decode([i for p in pieces for i in p]) == "<mask> </s> שלום"
    # The audit encodes held-out text the same way.
    (ids, _), = HFCandidate(Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json")), "x").encode_offsets([QUOTING])
    assert not set(ids) & specials


@pytest.fixture(scope="module")
def multilingual_base(tmp_path_factory, hebrew_docs):
    """A Gemma-shaped base in miniature: a SentencePiece-style BPE with byte fallback trained on Hebrew,
    English and Russian, a tiny tied Llama on top, and a corpus of Hebrew and English only."""
    from tokenizers import decoders, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("trim")
    english = [f"the king said unto his servant number {i}, go and fetch the water" for i in range(60)]
    russian = [f"король сказал своему слуге номер {i}, иди и принеси воды" for i in range(60)]
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Split("▁", "merged_with_next")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", *(f"<0x{b:02X}>" for b in range(256))]
    tok.train_from_iterator(hebrew_docs[:300] + english + russian,
                            trainers.BpeTrainer(vocab_size=3000, special_tokens=specials, show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>")
    fast.save_pretrained(root / "base")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                                 bos_token_id=2, eos_token_id=1, pad_token_id=0)).save_pretrained(root / "base")
    (root / "he.txt").write_text("\n".join(hebrew_docs[300:420]) + "\n", encoding="utf-8")
    (root / "en.txt").write_text("\n".join(english) + "\n", encoding="utf-8")
    build(root / "hebrew_corpus", [root / "he.txt"], validation_fraction=0.1)
    build(root / "corpus", [root / "en.txt"], validation_fraction=0.1, min_hebrew_ratio=0.0)
    return root, english, russian


def test_trim_keeps_the_corpus_tokens_and_the_same_logits_over_them(multilingual_base):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hebrew_lm.cli import main
    from hebrew_lm.corpus.shards import read_texts

    root, english, russian = multilingual_base
    assert main(["tokenizer", "trim", "--base_dir", str(root / "base"), "--corpus_dirs", str(root / "hebrew_corpus"),
                 str(root / "corpus"), "--output_dir", str(root / "trim")]) == 0
    stats = json.loads((root / "trim" / "trim.json").read_text())
    base_tok, trim_tok = AutoTokenizer.from_pretrained(root / "base"), AutoTokenizer.from_pretrained(root / "trim")
    assert stats["vocabulary_after"] == len(trim_tok) < stats["vocabulary_before"] == len(base_tok)
    assert len(trim_tok) % 8 == 0 and stats["parameters_after"] < stats["parameters_before"]
    base_vocab = base_tok.get_vocab()
    old_id = {i: base_vocab[t] for t, i in trim_tok.get_vocab().items()}
    assert not any("ко" in t or "сл" in t for t in trim_tok.get_vocab())  # Russian's own tokens are gone
    texts = [*read_texts(root / "hebrew_corpus", "validation"), *read_texts(root / "corpus", "train")][:40]
    for text in texts:  # the corpus tokenizes as before, id for id
        assert [old_id[i] for i in trim_tok(text)["input_ids"]] == base_tok(text)["input_ids"]
    for text in russian[:3]:  # text it never saw: bytes, never <unk>, and back to the same text
        ids = trim_tok(text, add_special_tokens=False)["input_ids"]
        assert trim_tok.unk_token_id not in ids and trim_tok.decode(ids) == text
    base = AutoModelForCausalLM.from_pretrained(root / "base").eval()
    trimmed = AutoModelForCausalLM.from_pretrained(root / "trim").eval()
    kept = [old_id[i] for i in range(len(trim_tok))]
    with torch.no_grad():
        before = base(base_tok(texts[0], return_tensors="pt")["input_ids"]).logits[..., kept]
        after = trimmed(trim_tok(texts[0], return_tensors="pt")["input_ids"]).logits
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)
    assert trimmed.config.eos_token_id == trim_tok.eos_token_id == trim_tok.convert_tokens_to_ids("<eos>")
