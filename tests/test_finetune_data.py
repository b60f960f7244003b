"""Fine-tuning data: readers, validation with file and line, tag schemes, the embedded tasks, scores and
error analysis. Real benchmark files are never read here; small files in their formats are written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from hebrew_lm.finetune.config import TaskSpec
from hebrew_lm.embedded.htb_ner import read_htb_ner, token_tag
from hebrew_lm.embedded.sentiment_demo import LABELS, sentiment_demo
from hebrew_lm.finetune.data import check_classification, check_ner, read_classification, read_tagged
from hebrew_lm.labels import bio_to_bioes, bioes_to_bio, bioes_violations, entities, repair_bioes
from hebrew_lm.records import Example, Sentence
from hebrew_lm.finetune.encode import IGNORE, choose_max_len, encode_ner, word_predictions
from hebrew_lm.finetune.metrics import classification_errors, classification_scores, has_negation, ner_errors, ner_scores
from hebrew_lm.finetune.tasks import load_task


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


NEMO_LIKE = "שרגא B-PER\nברוש E-PER\nאמר O\n.  O\n\nו ה 60 O\nבתל B-GPE\nאביב E-GPE\n"


def test_nemo_style_file_splits_on_the_last_space_only(tmp_path):
    sentences, scheme = read_tagged(write(tmp_path / "x.bmes", NEMO_LIKE), spaced_words=True)
    assert scheme == "bioes"
    # NEMO's one word with spaces inside stays whole; a double space leaves no space in the word.
    assert [s.words for s in sentences] == [["שרגא", "ברוש", "אמר", "."], ["ו ה 60", "בתל", "אביב"]]
    assert sentences[1].tags == ["O", "B-GPE", "E-GPE"]
    assert sentences[1].where.endswith("x.bmes:6")


def test_bio_files_become_bioes_and_back():
    bio = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "I-LOC"]
    bioes = bio_to_bioes(bio)
    assert bioes == ["B-PER", "E-PER", "O", "S-LOC", "B-LOC", "I-LOC", "E-LOC"]
    assert bioes_to_bio(bioes) == bio
    assert entities(bioes) == [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 7)]


def test_bio_file_is_read_as_bioes(tmp_path):
    sentences, scheme = read_tagged(write(tmp_path / "x.bio", "דוד B-PER\nלוי I-PER\nהלך O\n"))
    assert scheme == "bio" and sentences[0].tags == ["B-PER", "E-PER", "O"]


@pytest.mark.parametrize("text, message", [
    ("שלום O\nעולם X-PER\n", "x.bmes:2: 'X-PER' is not a BIOES/BIO tag"),
    ("שלום O\nעולם\n", "x.bmes:2: expected `word TAG`, found one column"),
    ("", "x.bmes: no sentences"),
    ("שלום\tO\nעולם\tO\tX\n", "x.bmes:2: 3 columns where earlier lines have 2"),
])
def test_bad_tagged_files_name_the_file_and_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("`", ".")):
        read_tagged(write(tmp_path / "x.bmes", text))


def test_a_windows_1255_file_is_an_error_with_the_fix(tmp_path):
    path = write(tmp_path / "x.bmes", "שלום O\n", encoding="cp1255")
    with pytest.raises(ValueError, match=r"x.bmes:1: not UTF-8 \(it decodes as Windows-1255"):
        read_tagged(path)


def test_mixed_encodings_name_the_first_bad_line(tmp_path):
    path = tmp_path / "x.bmes"
    path.write_bytes("שלום O\nעולם O\n".encode() + "\nרע O\n".encode("cp1255"))
    with pytest.raises(ValueError, match=r"x.bmes:4: not UTF-8"):
        read_tagged(path)


def test_illegal_transitions_are_errors_or_repaired_and_counted(tmp_path):
    good = read_tagged(write(tmp_path / "train.bmes", "דוד B-PER\nלוי E-PER\n\nחיפה S-GPE\n"))[0]
    broken = read_tagged(write(tmp_path / "dev.bmes", "אמר O\nדוד I-PER\nלוי E-PER\nהלך O\n"))[0]
    assert bioes_violations(broken[0].tags) == [1]
    with pytest.raises(ValueError, match=r"dev.bmes:2: illegal BIOES transition O -> I-PER \('דוד'\)"):
        check_ner(good, broken, good, repair=False)
    _, dev, _, types, notes = check_ner(good, broken, good, repair=True)
    assert dev[0].tags == ["O", "B-PER", "E-PER", "O"]
    assert types == ["GPE", "PER"]
    assert "dev: 1 sentences with illegal BIOES transitions repaired" in notes


def test_repair_closes_entities_left_open():
    assert repair_bioes(["B-ORG", "I-ORG", "O", "E-LOC", "B-PER"]) == ["B-ORG", "E-ORG", "O", "S-LOC", "S-PER"]
    assert bioes_violations(repair_bioes(["I-X", "I-X", "B-Y", "O", "E-Z"])) == []


def test_a_type_train_never_shows_is_an_error_naming_the_sentence(tmp_path):
    train = read_tagged(write(tmp_path / "train.bmes", "דוד S-PER\n"))[0]
    test = read_tagged(write(tmp_path / "test.bmes", "אמר O\n\nחיפה S-GPE\n"))[0]
    with pytest.raises(ValueError, match=r"test.bmes:3: entity type\(s\) \['GPE'\] not in the label set \['PER'\]"):
        check_ner(train, train, test, repair=False)


def test_classification_tsv_with_header_and_an_unlabelled_test_file(tmp_path):
    examples = read_classification(write(tmp_path / "train.tsv", "comment\tlabel\nכל הכבוד\t0\nאיזה באסה\t1\n"))
    assert [(e.text, e.label) for e in examples] == [("כל הכבוד", "0"), ("איזה באסה", "1")]
    assert examples[1].where.endswith("train.tsv:3")
    # SMCD's unlabelled test.tsv (an index column and the text) says so and points at its gold file.
    with pytest.raises(ValueError, match=r"test.tsv: this file has no labels.*test_gold.tsv"):
        read_classification(write(tmp_path / "test.tsv", "\tcomment\n0\tכל הכבוד\n1\tאיזה באסה\n"))
    with pytest.raises(ValueError, match=r"test2.tsv:3: expected `text<TAB>label`, found no label.*test_gold.tsv"):
        read_classification(write(tmp_path / "test2.tsv", "text\tlabel\nטוב\t0\nכל הכבוד\t\n"))
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        read_classification(write(tmp_path / "bad.jsonl", '{"text": "א", "label": "x"}\n{oops\n'))
    with pytest.raises(ValueError, match=r"label '7' is not in the label set"):
        check_classification(examples, [Example("שלום", "7", "dev.tsv:2")], examples)


def test_smcd_layout_is_found_and_labels_named(tmp_path):
    folder = tmp_path / "smcd" / "Sentiment_Data" / "token"
    folder.mkdir(parents=True)
    for name in ("train", "dev", "test_gold"):
        write(folder / f"{name}.tsv", "comment\tlabel\nכל הכבוד\t0\nנורא\t1\nמישהו יודע?\t2\n")
    (loaded,) = load_task(TaskSpec("smcd"), str(tmp_path))
    assert loaded.kind == "classification" and loaded.data.labels == ["positive", "negative", "neutral"]
    assert [e.label for e in loaded.data.test] == ["positive", "negative", "neutral"]
    with pytest.raises(ValueError, match=r"nemo train: not found.*hebrew-lm data download"):
        load_task(TaskSpec("nemo"), str(tmp_path))


def test_bmc_runs_each_split(tmp_path):
    folder = tmp_path / "bmc" / "splits"
    folder.mkdir(parents=True)
    for i in (1, 2, 3):
        for s in ("train", "dev", "test"):
            write(folder / f"bmc_split.{s}.{i}.bmes", "דוד S-PER\nאמר O\n")
    loaded = load_task(TaskSpec("bmc", splits=["1", "3"]), str(tmp_path))
    assert [t.name for t in loaded] == ["bmc/1", "bmc/3"]


def test_token_tags_from_morpheme_tags_follow_nemo_token_single():
    assert token_tag(["O", "S-GPE"]) == "S-GPE"          # מ+תאילנד
    assert token_tag(["O", "B-ORG"]) == "B-ORG"          # ה+ועדת ...
    assert token_tag(["I-ORG", "E-ORG"]) == "E-ORG"
    assert token_tag(["O", "B-PER", "E-PER"]) == "S-PER"
    assert token_tag(["I-ORG"]) == "I-ORG"
    assert token_tag(["O", "O"]) == "O"


def test_embedded_htb_ner_has_nemo_sizes_and_legal_tags():
    splits = read_htb_ner()
    assert {k: len(v) for k, v in splits.items()} == {"train": 4937, "dev": 500, "test": 706}
    assert sum(len(s.words) for s in splits["dev"]) == 8531  # NEMO's dev token count
    first = splits["dev"][0]
    assert first.words[3] == "מתאילנד" and first.tags[3] == "S-GPE"
    assert all(not bioes_violations(s.tags) for split in splits.values() for s in split)
    types = {t[2:] for s in splits["train"] for t in s.tags if t != "O"}
    assert types == {"PER", "ORG", "GPE", "LOC", "FAC", "EVE", "WOA", "ANG", "DUC"}


def test_sentiment_demo_is_balanced_split_by_subject_and_fixed():
    splits = sentiment_demo()
    assert sum(len(v) for v in splits.values()) >= 300
    for examples in splits.values():
        counts = {label: sum(e.label == label for e in examples) for label in LABELS}
        assert len(set(counts.values())) == 1, counts
    texts = {k: {e.text for e in v} for k, v in splits.items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["dev"]
    assert [e.text for e in sentiment_demo()["test"]] == [e.text for e in splits["test"]]
    assert any(has_negation(e.text) for e in splits["train"] if e.label == "negative")


def test_ner_scores_are_strict_iobes_entity_f1():
    gold = [["B-PER", "E-PER", "O", "S-GPE"], ["S-ORG", "O"]]
    pred = [["B-PER", "E-PER", "O", "S-LOC"], ["B-ORG", "O"]]  # one right, one wrong type, one broken
    scores = ner_scores(gold, pred)
    assert scores["precision"] == pytest.approx(1 / 2)  # the broken B-ORG is no entity in strict mode
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["score"] == pytest.approx(0.4)
    assert scores["per_type"]["PER"]["f1"] == 1.0


def test_ner_error_categories():
    s = Sentence("א ב ג ד ה ו ז ח".split(), ["B-PER", "E-PER", "O", "S-GPE", "O", "B-ORG", "E-ORG", "S-LOC"], "f:1")
    pred = ["B-PER", "E-PER", "O", "S-LOC", "S-PER", "S-ORG", "O", "O"]
    errors = ner_errors([s], [pred], ["GPE", "LOC", "ORG", "PER"])
    assert errors["counts"] == {"correct": 1, "type": 1, "boundary": 1, "boundary+type": 0, "missed": 1, "spurious": 1}
    labels, matrix = errors["confusion"]["labels"], errors["confusion"]["matrix"]
    assert matrix[labels.index("GPE")][labels.index("LOC")] == 1
    assert matrix[labels.index("(none)")][labels.index("PER")] == 1
    assert errors["examples"]["boundary"][0]["gold"] == "ו ז [ORG]"


def test_classification_scores_and_negation_in_errors():
    examples = [Example("לא אהבתי בכלל", "negative"), Example("אין על זה", "positive"), Example("מעולה", "positive"),
                Example("ואין מה לעשות", "negative")]
    pred = ["negative", "negative", "positive", "positive"]
    scores = classification_scores([e.label for e in examples], pred, ["positive", "negative"])
    assert scores["accuracy"] == 0.5 and scores["macro_f1"] == pytest.approx(0.5)
    errors = classification_errors(examples, pred, ["positive", "negative"])
    assert errors["errors"] == 2 and errors["negation"]["errors_with_negation"] == 2
    assert errors["confusion"]["matrix"] == [[1, 1], [1, 1]]
    assert has_negation("ואין מה לעשות") and has_negation("זה לא.") and not has_negation("לאה הלכה")


class CharTokenizer:
    """A stand-in with the tokenizer calls encode.py makes: one token per character, <s> x </s>."""

    unk_token_id = 3

    def __call__(self, texts, add_special_tokens=True, split_special_tokens=False):
        ids = [[10 + ord(c) % 50 for c in t] for t in texts]
        return {"input_ids": [[0, *i, 2] if add_special_tokens else i for i in ids]}


def test_long_sentences_become_word_aligned_windows_and_every_word_is_scored():
    s = Sentence(["אבג", "דה", "ו", "זחטי", "כל"], ["B-PER", "E-PER", "O", "S-GPE", "O"])
    labels = ["O", "B-PER", "E-PER", "S-GPE"]
    ids = {t: i for i, t in enumerate(labels)}
    # Pieces per word (with the space before it): 3, 3, 2, 5, 3; a window has room for 8.
    enc = encode_ner(CharTokenizer(), [s], ids, max_len=10)
    assert enc.windowed == 1 and enc.owner == [0, 0]
    first, second = enc.features
    assert first["input_ids"][0] == 0 and first["input_ids"][-1] == 2 and len(first["input_ids"]) == 10
    # Labels sit on each word's first piece only.
    assert first["labels"] == [IGNORE, ids["B-PER"], IGNORE, IGNORE, ids["E-PER"], IGNORE, IGNORE, ids["O"], IGNORE,
                               IGNORE]
    assert second["labels"] == [IGNORE, ids["S-GPE"], *[IGNORE] * 4, ids["O"], IGNORE, IGNORE, IGNORE]
    width = max(len(f["labels"]) for f in enc.features)
    labels_arr = np.array([f["labels"] + [IGNORE] * (width - len(f["labels"])) for f in enc.features])
    assert word_predictions(np.where(labels_arr == IGNORE, 0, labels_arr), labels_arr, [s], labels) == [s.tags]


def test_max_len_is_the_95th_percentile_rounded_up_to_64():
    assert choose_max_len([10] * 95 + [500] * 5, 512) == 64
    assert choose_max_len(list(range(1, 151)), 512) == 192
    assert choose_max_len([900] * 10, 512) == 512


def test_download_keeps_nothing_that_fails_its_checksum(tmp_path, monkeypatch):
    from hebrew_lm import download as dl

    mirror = tmp_path / "mirror" / "OnlpLab" / "HebrewResources" / dl.SOURCES["bmc"][1] / "BMCNER" / "splits"
    mirror.mkdir(parents=True)
    (mirror / "a.bmes").write_text("דוד S-PER\n", encoding="utf-8")
    monkeypatch.setenv("HEBREW_LM_DATA_MIRROR", (tmp_path / "mirror").as_uri())
    monkeypatch.setitem(dl.FILES, "bmc", [("splits/a.bmes", "0" * 64)])
    with pytest.raises(ValueError, match="has sha256 .* expected 0000"):
        dl.download("bmc", tmp_path / "data")
    assert not (tmp_path / "data" / "bmc" / "splits" / "a.bmes").exists()
    good = hashlib.sha256((mirror / "a.bmes").read_bytes()).hexdigest()
    monkeypatch.setitem(dl.FILES, "bmc", [("splits/a.bmes", good)])
    dest = dl.download("bmc", tmp_path / "data")
    assert (dest / "splits" / "a.bmes").read_text(encoding="utf-8") == "דוד S-PER\n"


def test_jsonl_ner_files_and_their_errors(tmp_path):
    path = write(tmp_path / "x.jsonl", '{"tokens": ["דוד", "לוי", "הלך"], "tags": ["B-PER", "I-PER", "O"]}\n')
    sentences, scheme = read_tagged(path)
    assert scheme == "bio" and sentences[0].tags == ["B-PER", "E-PER", "O"]
    bad = write(tmp_path / "bad.jsonl", '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["a", "b"], "tags": ["O"]}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: 2 tokens but 1 tags"):
        read_tagged(bad)
    for name in ("train", "dev", "test"):
        write(tmp_path / f"{name}.jsonl", '{"tokens": ["דוד", "הלך"], "tags": ["S-PER", "O"]}\n')
    (task,) = load_task(TaskSpec("mine", train=str(tmp_path / "train.jsonl"), dev=str(tmp_path / "dev.jsonl"),
                                 test=str(tmp_path / "test.jsonl")), str(tmp_path))
    assert task.kind == "ner" and task.data.labels == ["PER"]


def test_nemo_morpheme_level_files_are_selectable(tmp_path):
    gold = tmp_path / "nemo" / "spmrl" / "gold"
    gold.mkdir(parents=True)
    for s in ("train", "dev", "test"):
        write(gold / f"token-single_gold_{s}.bmes", "מתאילנד S-GPE\n")
        write(gold / f"morph_gold_{s}.bmes", "מ O\nתאילנד S-GPE\n")
    (tokens,) = load_task(TaskSpec("nemo"), str(tmp_path))
    (morphs,) = load_task(TaskSpec("nemo", variant="spmrl-morph"), str(tmp_path))
    assert tokens.data.train[0].words == ["מתאילנד"] and morphs.data.train[0].words == ["מ", "תאילנד"]
    with pytest.raises(ValueError, match="variant must be one of"):
        load_task(TaskSpec("nemo", variant="bogus"), str(tmp_path))


def test_a_task_can_set_its_own_epoch_budget(tmp_path):
    from hebrew_lm.presets import load_preset, stage_config

    preset = load_preset(Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml")
    config = stage_config(preset, "finetune")
    demo = next(t for t in config.tasks if t.name == "sentiment-demo")
    assert demo.max_epochs == 15 and config.max_epochs == 12
    (loaded,) = load_task(demo, config.data_dir)
    assert loaded.max_epochs == 15
    with pytest.raises(ValueError, match=r"finetune.tasks\[x\].max_epochs must lie in \[0, 10000\], got -1"):
        TaskSpec("x", max_epochs=-1)


# --------------------------------------------------------------------------------------------------
# Reader rules (docs/finetune.md, "Reader rules"): one line reader, file:line errors, odd-but-valid input


def test_a_space_separated_line_with_more_columns_is_an_error_naming_file_line_and_count(tmp_path):
    path = write(tmp_path / "pos.bmes", "דוד NNP S-PER\nהלך VB O\n")
    with pytest.raises(ValueError, match=r"pos.bmes:1: 3 space-separated columns"):
        read_tagged(path)
    # Double spaces and trailing spaces or tabs are only separators: no space is left in a word or a tag.
    sentences, _ = read_tagged(write(tmp_path / "ok.bmes", "דוד  S-PER \nהלך O\t\nבבוקר O  \n"))
    assert sentences[0].words == ["דוד", "הלך", "בבוקר"] and sentences[0].tags == ["S-PER", "O", "O"]
    # Tab-separated CoNLL columns: the last is the tag.
    sentences, _ = read_tagged(write(tmp_path / "tabs.conll", "דוד\tNNP\tS-PER\nהלך\tVB\tO\n"))
    assert sentences[0].words == ["דוד", "הלך"] and sentences[0].tags == ["S-PER", "O"]


@pytest.mark.parametrize("record, kind", [("[1, 2]", "list"), ("42", "int"), ("null", "NoneType"), ('"x"', "str")])
def test_a_jsonl_record_that_is_not_an_object_names_file_and_line(tmp_path, record, kind):
    ner = write(tmp_path / "n.jsonl", '{"tokens": ["a"], "tags": ["O"]}\n' + record + "\n")
    with pytest.raises(ValueError, match=rf"n.jsonl:2: expected a JSON object, got {kind}"):
        read_tagged(ner)
    cls = write(tmp_path / "c.jsonl", '{"text": "א", "label": "x"}\n' + record + "\n")
    with pytest.raises(ValueError, match=rf"c.jsonl:2: expected a JSON object, got {kind}"):
        read_classification(cls)


def test_lines_split_on_newline_only_so_unicode_line_breaks_inside_text_are_kept(tmp_path):
    texts = ["שורה\u2028אחת", "פסקה\u2029שתיים", "קו\x85 תחתון", "טאב\vאנכי", "דף\fחדש"]
    body = "".join(json.dumps({"text": t, "label": "a"}, ensure_ascii=False) + "\n" for t in texts)
    body += '{"text": "אחרון", "label": "b"}\r\n'
    examples = read_classification(write(tmp_path / "u.jsonl", body))
    assert [e.text for e in examples[:5]] == texts
    assert [e.where.rsplit(":", 1)[1] for e in examples] == ["1", "2", "3", "4", "5", "6"]
    assert examples[-1].label == "b"


def test_illegal_transitions_name_the_jsonl_line_and_token_and_the_bio_files_own_tag(tmp_path):
    path = write(tmp_path / "t.jsonl", '{"tokens": ["a", "b"], "tags": ["O", "O"]}\n'
                                       '{"tokens": ["דוד", "לוי", "הלך"], "tags": ["S-PER", "E-PER", "O"]}\n')
    sentences, _ = read_tagged(path)
    with pytest.raises(ValueError, match=r"t.jsonl:2: token 1: illegal BIOES transition S-PER -> E-PER"):
        check_ner(sentences, [], [], repair=False)
    # A BIO file's error shows the tag as the file wrote it (I-PER), not the converted E-PER.
    bio = write(tmp_path / "b.bio", "הלך O\nלוי I-PER\n")
    sentences, scheme = read_tagged(bio)
    assert scheme == "bio"
    with pytest.raises(ValueError, match=r"b.bio:2: illegal BIO transition O -> I-PER"):
        check_ner(sentences, [], [], repair=False)


def test_missing_or_non_utf8_jsonl_train_file_is_an_error_naming_it(tmp_path):
    dev = write(tmp_path / "dev.jsonl", '{"text": "א", "label": "x"}\n')
    spec = TaskSpec("mine", train=str(tmp_path / "nope.jsonl"), dev=str(dev), test=str(dev))
    with pytest.raises(ValueError, match=r"nope.jsonl: no such file"):
        load_task(spec, "data")
    write(tmp_path / "w.jsonl", '{"text": "שלום", "label": "x"}\n', encoding="cp1255")
    spec = TaskSpec("mine", train=str(tmp_path / "w.jsonl"), dev=str(dev), test=str(dev))
    with pytest.raises(ValueError, match=r"w.jsonl:1: not UTF-8 \(it decodes as Windows-1255"):
        load_task(spec, "data")


def test_a_header_row_is_never_a_training_example_or_a_new_class(tmp_path):
    rows = "".join(f"טקסט {i}\t{'pos' if i % 2 else 'neg'}\n" for i in range(6))
    train = read_classification(write(tmp_path / "train.tsv", "text\tclass\n" + rows))
    assert {e.label for e in train} == {"pos", "neg"} and len(train) == 6
    # dev: its header's value is a label of no line and not a train label; its one-example class is kept.
    dev = read_classification(write(tmp_path / "dev.tsv", "review\tpolarity\nטוב\tpos\nרע\tneg\n"),
                              known_labels={"pos", "neg"})
    assert [e.label for e in dev] == ["pos", "neg"]
    first_is_data = read_classification(write(tmp_path / "d2.tsv", "מעולה\tpos\nרע\tneg\n"), known_labels={"pos", "neg"})
    assert len(first_is_data) == 2


def test_nemo_mention_scores_follow_the_official_scripts_two_rules():
    from hebrew_lm.finetune.metrics import mention_scores, mentions

    # (a) an ill-formed B-PER E-ORG still makes a mention, of the first tag's type
    assert mentions(["דוד", "בן", "גוריון"], ["B-PER", "I-ORG", "E-ORG"], 0) == {(0, "דודבןגוריון", "PER"): 1}
    assert mentions(["x", "y"], ["I-PER", "E-PER"], 0) == {}  # nothing open: no mention
    # (b) mentions match by text and type within a sentence, not by position
    words = [["ירושלים", "ו", "ירושלים", "עיר"]]
    gold, pred = [["S-GPE", "O", "O", "O"]], [["O", "O", "S-GPE", "O"]]
    assert mention_scores(words, gold, pred) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert ner_scores(gold, pred)["f1"] == 0.0  # seqeval: the span is wrong
    # a repeated mention counts as many times as it occurs
    got = mention_scores(words, [["S-GPE", "O", "S-GPE", "O"]], pred)
    assert got["precision"] == 1.0 and got["recall"] == 0.5


def test_viterbi_decoding_returns_the_best_legal_bioes_sequence():
    import numpy as np

    from hebrew_lm.labels import bioes_violations
    from hebrew_lm.finetune.encode import bioes_viterbi

    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-ORG", "E-ORG"]
    # argmax says B-PER E-ORG (ill-formed); the best legal sequence is B-PER E-PER
    p = np.full((2, len(labels)), 0.01)
    p[0, labels.index("B-PER")] = 0.6
    p[1, labels.index("E-ORG")], p[1, labels.index("E-PER")] = 0.5, 0.4
    log_p = np.log(p / p.sum(1, keepdims=True))
    argmax = [labels[i] for i in log_p.argmax(1)]
    assert bioes_violations(argmax)
    best = [labels[i] for i in bioes_viterbi(log_p, labels)]
    assert best == ["B-PER", "E-PER"] and not bioes_violations(best)
    # when argmax is legal, Viterbi keeps it
    q = np.log(np.full((3, len(labels)), 0.01) + np.eye(len(labels))[[0, 4, 0]])
    assert [labels[i] for i in bioes_viterbi(q, labels)] == ["O", "S-PER", "O"]
