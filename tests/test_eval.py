"""`hebrew-lm eval`: few-shot scores of causal LMs on lm-evaluation-harness, from local task files."""

from __future__ import annotations

import json
import random
import shutil

import pytest
import yaml

from hebrew_lm.evaluate.metrics import qa_scores, token_f1
from hebrew_lm.evaluate.public import build_public_task
from hebrew_lm.evaluate.checks import check_model, check_task
from hebrew_lm.evaluate.stage import contamination_report
from hebrew_lm.embedded.kjv import kjv_chapters, verse_pairs
from hebrew_lm.evaluate.tasks import Task, load_task_yaml, write_task

HEBREW = ("ויאמר אלהים אל משה לאמר דבר אל בני ישראל ואמרת אליהם כי תבאו אל הארץ אשר אני נתן לכם "
          "המשנה אומרת שהאדם חייב לברך על הטובה כשם שהוא מברך על הרעה העיר גדולה והשוק מלא אנשים").split()
ENGLISH = ("now is the winter of our discontent made glorious summer by this sun of york friends romans "
           "countrymen lend me your ears i come to bury caesar not to praise him all the world a stage").split()
EMBEDDED = {"he_cloze", "en_cloze", "he_bpb", "en_bpb", "he_arith", "he_sentiment", "he_entity_type"}


def lines(words, n, seed, length=(40, 60)):
    rng = random.Random(seed)
    return "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(*length))) for _ in range(n)) + "\n"


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    """A tiny English decoder and a Hebrew corpus, then the eval stage on it under two names."""
    from hebrew_lm.cli import main

    root = tmp_path_factory.mktemp("eval")
    (root / "en.txt").write_text(lines(ENGLISH, 300, 1), encoding="utf-8")
    (root / "he.txt").write_text(lines(HEBREW, 300, 2), encoding="utf-8")
    corpus = {"min_hebrew_ratio": 0.0, "num_workers": 1, "near_dedup": False, "validation_fraction": 0.2, "min_words": 3}
    run = root / "run"
    data = {"run_dir": str(run), "stages": ["corpus", "tokenizer", "decoder", "hebrew_corpus", "eval", "report"],
            "corpus": {**corpus, "inputs": [str(root / "en.txt")]},
            "hebrew_corpus": {"stage": "corpus", **corpus, "inputs": [str(root / "he.txt")]},
            "tokenizer": {"vocab_size": 400, "audit": False},
            "decoder": {"max_seq_len": 64, "global_batch_size": 4, "micro_batch_size": 2, "warmup_steps": 1,
                        "max_steps": 4, "eval_every": 4, "checkpoint_every": 4, "eval_batches": 1},
            "eval": {"models": [str(run / "decoder" / "model")] * 2, "model_names": ["base", "again"], "limit": 4,
                     "max_length": 256}}  # cuts the shots: their whole context (up to 3,500 tokens) took 3x the time
    (root / "p.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    assert main(["run", str(root / "p.yaml")]) == 0
    return root


@pytest.mark.slow  # its module fixture runs the evaluation stage
def test_eval_scores_every_embedded_task_side_by_side_with_logs_card_and_report(eval_run):
    out = eval_run / "run" / "eval"
    table = json.loads((out / "results.json").read_text())
    assert EMBEDDED <= set(table["tasks"])
    assert table["languages"]["en_cloze"] == "English" and table["languages"]["he_cloze"] == "Hebrew"
    base, again = table["models"]["base"], table["models"]["again"]
    for task in table["tasks"]:
        r = base["tasks"][task]
        assert r["n"] == 4 and (0.0 <= r["value"] <= 1.0 or r["metric"] == "bits_per_byte" and r["value"] > 0)
        assert r["value"] == again["tasks"][task]["value"]  # the same weights score the same, deterministically
        lines_ = (out / "samples" / "base" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines_) == 4 and "resps" in json.loads(lines_[0])
    assert base["tasks"]["he_cloze"]["num_fewshot"] == 10 and base["tasks"]["he_arith"]["metric"] == "exact_match"
    hebrew = [base["tasks"][t]["value"] for t in table["tasks"]
              if table["languages"][t] == "Hebrew" and base["tasks"][t]["metric"] != "bits_per_byte"]
    assert base["averages"]["Hebrew"] == pytest.approx(sum(hebrew) / len(hebrew))
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "he_cloze (acc, 10-shot, n=4)" in md and "| base |" in md and "Contamination" in md
    assert set(table["contamination"]["tasks"]) == set(table["tasks"])
    card = yaml.safe_load((out / "model-index" / "base.yaml").read_text(encoding="utf-8"))
    assert {r["dataset"]["name"] for r in card["model-index"][0]["results"]} == set(table["tasks"])
    assert (out / "results.png").stat().st_size > 1000
    report = (eval_run / "run" / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Few-shot evaluation" in report and "he_arith (5-shot)" in report


def bits_per_byte_by_hand(model_dir, texts: list[str], length: int) -> float:
    """The model's negative log-likelihood of each text after one BOS, in windows of `length` tokens that
    each keep as much context as fits, in bits over the texts' UTF-8 bytes (transformers alone)."""
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir).eval()
    nats = 0.0
    for text in texts:
        full = [tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"]
        for first in range(0, len(full) - 1, length):  # each window predicts the next `length` tokens
            end = min(first + length, len(full) - 1)
            start = max(0, end - length)  # with as much context before them as fits
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([full[start:end]])).logits[0].double()
            nll = torch.nn.functional.cross_entropy(logits, torch.tensor(full[start + 1: end + 1]), reduction="none")
            nats += float(nll[-(end - first):].sum())
    return nats / math.log(2) / sum(len(t.encode("utf-8")) for t in texts)


def test_bits_per_byte_through_lm_eval_is_the_models_own_nll_over_the_texts_bytes(eval_run):
    """he_bpb and en_bpb as lm-eval scores them (its rolling windows of max_length, the first token after the
    tokenizer's BOS) equal the sum of the model's negative log-likelihoods, computed here with transformers,
    over the UTF-8 bytes of the same texts, in bits; and they stay out of the averages, as lower-is-better."""
    out, model_dir = eval_run / "run" / "eval", eval_run / "run" / "decoder" / "model"
    table = json.loads((out / "results.json").read_text())
    for task in ("he_bpb", "en_bpb"):
        texts = [json.loads(line)["text"] for line in (out / "tasks" / f"{task}.test.jsonl").read_text(encoding="utf-8").splitlines()][:4]
        got = table["models"]["base"]["tasks"][task]
        assert got["metric"] == "bits_per_byte" and got["value"] == pytest.approx(
            bits_per_byte_by_hand(model_dir, texts, 256), rel=1e-4)  # 256: the stage's max_length
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "he_bpb (bits per byte, lower is better, n=4)" in md


def test_bits_per_byte_of_a_model_whose_tokenizer_adds_bos_scores_the_text_after_one_bos(eval_run, tmp_path):
    """Gemma's tokenizer opens every text with <bos>; lm-eval's rolling windows open with it too, and left
    alone they score `<bos> <bos> text` (the second <bos> cost Gemma 3 270M 18 nats a document). The stage
    scores the text after one BOS, as for any other model; a few-shot task beside it is still scored."""
    from hebrew_lm.presets import load_preset, stage_config
    from hebrew_lm.stages import STAGES

    from helpers import with_opening_bos

    base = with_opening_bos(eval_run / "run" / "decoder" / "model", tmp_path / "bos")
    out = tmp_path / "eval"
    config = stage_config(load_preset(eval_run / "p.yaml"), "eval", {
        "models": [str(base)], "model_names": ["bos"], "tasks": ["he_bpb", "he_cloze"], "output_dir": str(out)})
    STAGES["eval"].run(config)
    table = json.loads((out / "results.json").read_text())
    texts = [json.loads(line)["text"] for line in (out / "tasks" / "he_bpb.test.jsonl").read_text(encoding="utf-8").splitlines()][:4]
    assert table["models"]["bos"]["tasks"]["he_bpb"]["value"] == pytest.approx(bits_per_byte_by_hand(base, texts, 256), rel=1e-4)
    cloze = json.loads((out / "samples" / "bos" / "he_cloze.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert cloze["resps"] and table["models"]["bos"]["tasks"]["he_cloze"]["n"] == 4


def test_running_lm_eval_by_hand_on_the_written_tasks_gives_the_same_numbers(eval_run):
    """What `lm_eval --model hf --model_args pretrained=MODEL --include_path OUT/tasks` runs, in process:
    its CLI hands these arguments to `simple_evaluate` after indexing lm-eval's 14,000 own task files,
    which is most of a by-hand run's 25 s and changes nothing for tasks with our names."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    out = eval_run / "run" / "eval"
    model = eval_run / "run" / "decoder" / "model"
    table = json.loads((out / "results.json").read_text())
    got = simple_evaluate(model="hf", model_args=f"pretrained={model},dtype=float32,max_length=256",
                          tasks=["he_sentiment"], limit=4, batch_size=8, device="cpu", log_samples=True,
                          task_manager=TaskManager(include_path=str(out / "tasks"), include_defaults=False))
    assert got["results"]["he_sentiment"]["acc,none"] == table["models"]["base"]["tasks"]["he_sentiment"]["value"]
    # item by item, each answer's log-likelihood (an accuracy of 4 items could agree by chance)
    logged = [json.loads(line) for line in (out / "samples" / "base" / "he_sentiment.jsonl").read_text().splitlines()]
    by_hand = got["samples"]["he_sentiment"]
    assert [s["doc"] for s in by_hand] == [s["doc"] for s in logged]
    assert [ll for s in by_hand for ll, _ in s["filtered_resps"]] == \
        pytest.approx([ll for s in logged for ll, _ in s["resps"]], abs=1e-4)


def test_public_tasks_run_from_local_files_in_their_own_formats(eval_run, tmp_path):
    """Small files in each public set's exact format: converted, checked and scored by the stage."""
    from hebrew_lm.evaluate.config import EvalConfig
    from hebrew_lm.evaluate.stage import run

    data = tmp_path / "data"

    def jsonl(name, rows_shots, rows_test, files=("shots.jsonl", "test.jsonl")):
        (data / name).mkdir(parents=True)
        for file, rows in zip(files, (rows_shots, rows_test)):
            (data / name / file).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                            encoding="utf-8")

    arc = [{"question": f"כמה רגליים יש ל-{i} כלבים?", "choices": [str(4 * i), str(i), "שלוש", "אפס"],
            "answer": "ABCD"[i % 1] if i % 2 else 0} for i in range(1, 31)]
    jsonl("arc_he", arc[:26], arc[26:])
    copa = [{"premise": f"האיש {i} נרטב", "choice1": "ירד גשם", "choice2": "השמש זרחה", "question": "cause",
             "label": 0} for i in range(9)]
    jsonl("copa_he", copa[:6], copa[6:])
    hella = [{"ctx": f"היא פתחה את הדלת מספר {i}", "endings": ["ונכנסה", "ועפה לירח"], "label": 0} for i in range(14)]
    jsonl("hellaswag_he", hella[:11], hella[11:])
    gsm = [{"question": f"ליוסי {i} תפוחים וקיבל עוד 2. כמה יש לו?", "answer": f"{i} ועוד 2\n#### {i + 2}"}
           for i in range(9)]
    jsonl("gsm8k_he", gsm[:6], gsm[6:])
    nli = [{"translation1": f"הילד {i} אכל תפוח", "translation2": "הילד אכל", "original_label": "entailment",
            "sentence1": "x", "sentence2": "y"} for i in range(8)]
    jsonl("hebnli", nli[:6], [{**r, "hebrew_label": "contradiction"} for r in nli[6:]],
          ("HebNLI_val.jsonl", "HebNLI_test.jsonl"))
    (data / "smcd" / "Sentiment_Data" / "token").mkdir(parents=True)  # the source repository's layout
    for file, n in (("train.tsv", 8), ("test_gold.tsv", 3)):
        (data / "smcd" / "Sentiment_Data" / "token" / file).write_text(
            "comment\tlabel\n" + "".join(f"תגובה מספר {i} של {file}\t{i % 3}\n" for i in range(n)), encoding="utf-8")
    (data / "heq" / "data" / "data v1.1").mkdir(parents=True)  # a checkout of HeQ's repository
    for file, start in (("val v1.1.json", 0), ("test v1.1.json", 10)):
        squad = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": f"החוק {start + i} הוגבל באמצעות חקיקה.",
                 "qas": [{"question": "כיצד הוגבל החוק?", "id": str(start + i), "is_impossible": False,
                          "answers": [{"text": "באמצעות חקיקה", "answer_start": 9}]},
                         {"question": "מי?", "id": f"x{start + i}", "is_impossible": True, "answers": []}]}
                 for i in range(3)]}]}
        (data / "heq" / "data" / "data v1.1" / file).write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    tasks = ["arc_he", "copa_he", "hellaswag_he", "gsm8k_he", "hebnli", "heq", "smcd"]
    model = tmp_path / "my model, v1"  # a path lm-eval's "key=value,..." argument strings would break
    shutil.copytree(eval_run / "run" / "decoder" / "model", model)
    out = run(EvalConfig(output_dir=str(tmp_path / "out"), models=[str(model)], tasks=tasks, data_dir=str(data),
                         limit=2))
    table = json.loads((out / "results.json").read_text())
    assert table["tasks"] == tasks
    row = table["models"]["my model, v1"]["tasks"]
    assert [row[t]["num_fewshot"] for t in tasks] == [25, 5, 10, 5, 6, 2, 6]
    assert row["heq"]["metric"] == "f1" and row["arc_he"]["metric"] == "acc"
    assert all(row[t]["n"] == 2 for t in tasks)
    heq = [json.loads(x) for x in (out / "tasks" / "heq.test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(heq) == 3 and heq[0]["answers"] == ["באמצעות חקיקה"]  # unanswerable questions left out
    smcd = [json.loads(x) for x in (out / "tasks" / "smcd.test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["gold"] for r in smcd] == [0, 1, 2] and smcd[1]["choices"] == [" חיובי", " שלילי", " ניטרלי"]
    assert set(row["heq"]["other_metrics"]) == {"exact_match", "tlnls"}  # beside F1, as HeQ's paper scores it
    arc_item = json.loads((out / "tasks" / "arc_he.test.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert arc_item["choices"] == [" A", " B", " C", " D"] and "\nA. " in arc_item["query"]


def write_mc(folder, shots, test, name="t"):
    task = Task(name, "Hebrew", "multiple_choice", 1, "acc")
    write_task(folder, task, shots, test)
    return folder / f"{name}.yaml"


ITEM = {"query": "שאלה", "choices": [" כן", " לא"], "gold": 0}


@pytest.mark.parametrize("bad, message", [
    ({"query": "שאלה", "choices": [" כן"]}, r"t\.test\.jsonl:2: missing column\(s\) \['gold'\]"),
    ({**ITEM, "gold": 2}, r"t\.test\.jsonl:2: label 2 is outside its 2 choices"),
    ({**ITEM, "choices": []}, r"t\.test\.jsonl:2: `choices` must be a non-empty list"),
    ({**ITEM, "query": "אחרת", "where": "a shot"}, r"t\.test\.jsonl:2: a scored item is also a few-shot example"),
    ({**ITEM, "query": "אחרת", "gold": float("nan")}, r"t\.test\.jsonl:2: `gold` is NaN"),
    ({**ITEM, "query": "אחרת", "gold": "כן"}, r"t\.test\.jsonl:2: `gold` is a str here but a number at .*t\.test\.jsonl:1"),
    ({**ITEM, "query": "אחרת", "gold": [0]}, r"t\.test\.jsonl:2: `gold` is a list here but a number"),
    (ITEM, r"t\.test\.jsonl:2: the same scored item as .*t\.test\.jsonl:1; score each item once"),
    ({**ITEM, "query": "אחרת", "id": 7}, r"t\.test\.jsonl:2: id 7 again \(first at .*t\.test\.jsonl:1\)"),
])
def test_bad_task_files_stop_with_the_file_line_and_problem(tmp_path, bad, message):
    shots = [{**ITEM, "query": "אחרת2"}, {**ITEM, "query": "שלישית"}]
    if "where" in bad:
        shots[0]["query"] = "אחרת"
    first = {**ITEM, "id": 7} if "id" in bad else ITEM
    path = write_mc(tmp_path, shots, [first, bad])
    with pytest.raises(ValueError, match=message):
        check_task(path)


def test_a_line_that_is_not_utf8_json_is_named(tmp_path):
    path = write_mc(tmp_path, [{**ITEM, "query": "אחרת"}], [ITEM])
    with open(tmp_path / "t.test.jsonl", "ab") as f:
        f.write(b'{"query": "\xff"}\n')
    with pytest.raises(ValueError, match=r"t\.test\.jsonl:2: not UTF-8"):
        check_task(path)
    assert check_task(write_mc(tmp_path / "ok", [{**ITEM, "query": "אחרת"}], [ITEM]))["task"] == "t"


def test_public_files_with_bad_rows_are_named_before_any_model_loads(tmp_path):
    (tmp_path / "arc_he").mkdir()
    (tmp_path / "arc_he" / "shots.jsonl").write_text(
        json.dumps({"question": "q", "choices": ["a", "b"], "answer": "C"}) + "\n", encoding="utf-8")
    (tmp_path / "arc_he" / "test.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match=r"arc_he/shots\.jsonl:1: label 'C' is outside its 2 choices"):
        build_public_task(tmp_path / "tasks", "arc_he", tmp_path)
    with pytest.raises(ValueError, match=r"task copa_he needs .*copa_he/shots\.jsonl"):
        build_public_task(tmp_path / "tasks", "copa_he", tmp_path)


def test_a_model_that_is_not_a_causal_lm_gets_a_one_line_error(tmp_path, eval_run):
    (tmp_path / "mlm").mkdir()
    (tmp_path / "mlm" / "config.json").write_text(json.dumps({"architectures": ["RobertaForMaskedLM"]}))
    with pytest.raises(ValueError, match=r"is not a causal LM \(architectures \['RobertaForMaskedLM'\]\)"):
        check_model(tmp_path / "mlm")
    with pytest.raises(ValueError, match="no config.json"):
        check_model(tmp_path)
    no_eos = tmp_path / "no-eos"
    shutil.copytree(eval_run / "run" / "decoder" / "model", no_eos)
    config = json.loads((no_eos / "tokenizer_config.json").read_text())
    config.pop("eos_token", None)
    (no_eos / "tokenizer_config.json").write_text(json.dumps(config))
    for name in ("special_tokens_map.json",):
        if (no_eos / name).is_file():
            (no_eos / name).unlink()
    with pytest.raises(ValueError, match="tokenizer has no end-of-sequence token"):
        check_model(no_eos)


def test_hebrew_qa_scores_forgive_prefixes_niqqud_and_punctuation():
    assert qa_scores("בחקיקה.", ["חקיקה"]) == {"f1": 1.0, "exact_match": 1.0, "tlnls": 1.0}
    assert qa_scores("חֲקִיקָה", ["חקיקה"])["exact_match"] == 1.0
    assert token_f1("באמצעות חקיקה חדשה", "באמצעות חקיקה") == pytest.approx(0.8)
    assert qa_scores("ירושלים", ["תל אביב", "חיפה"])["f1"] == 0.0
    assert qa_scores("אב", ["אב"])["exact_match"] == 1.0  # short words keep their first letter


def test_tlnls_gives_a_near_miss_of_inflection_the_credit_f1_denies():
    from hebrew_lm.evaluate.metrics import levenshtein, tlnls

    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3
    assert token_f1("ירושלימה", "ירושלים") == 0.0
    assert tlnls("ירושלימה", "ירושלים") == pytest.approx(1 - 2 / 8)  # final mem made medial, he added: 2 edits of 8
    # the extra word keeps only its likeness to the nearest gold word (חדשה/חקיקה: 3 edits of 5)
    assert tlnls("באמצעות חקיקה חדשה", "באמצעות חקיקה") == pytest.approx((2 + (1 - 3 / 5)) / 3)
    assert tlnls("תל אביב", "חיפה") < 0.3 and tlnls("", "חיפה") == 0.0


def test_contamination_counts_the_scored_items_the_training_split_contains(eval_run, tmp_path):
    corpus = eval_run / "run" / "hebrew_corpus"
    from hebrew_lm.corpus.shards import read_texts

    seen = next(iter(read_texts(corpus, "train")))
    path = write_mc(tmp_path, [{**ITEM, "query": "אחרת לגמרי"}],
                    [{**ITEM, "query": " ".join(seen.split()[:12])}, {**ITEM, "query": "משפט חדש שלא נראה מעולם בשום מקום כלל וכלל"}])
    report = contamination_report({"t": load_task_yaml(path)}, [corpus], 8)
    assert report["tasks"]["t"] == {"items": 2, "contaminated": 1, "share": 0.5}
    assert contamination_report({"t": load_task_yaml(path)}, [], 8)["note"].startswith("no training corpus")


@pytest.mark.skipif(shutil.which("bible") is None, reason="Debian's bible-kjv is not installed (scripts/setup.sh installs it)")
def test_bible_chapters_align_verse_by_verse_with_the_kjv_where_their_counts_agree():
    kjv = kjv_chapters()
    ruth = [f"פסוק {i}" for i in range(1, 23)]  # Ruth 1 has 22 verses in both
    pairs = verse_pairs([("scriptures/bible.json:Ruth 1", "\n".join(ruth)),
                         ("scriptures/bible.json:Joel 3", "\n".join(ruth[:5])),  # the KJV's Joel 3 has 21: left out
                         ("scriptures/mishnah.json:Berakhot 1", "x")], kjv)
    assert len(pairs) == 22 and pairs[0]["he"] == "פסוק 1" and pairs[0]["en"].startswith("Now it came to pass")
    assert pairs[-1]["verse"] == 22 and {p["chapter"] for p in pairs} == {"Ruth 1"}


def test_max_length_shorter_than_an_answer_is_named_before_any_model_loads(eval_run, tmp_path):
    from transformers import AutoTokenizer

    from hebrew_lm.evaluate.checks import check_continuations

    model = eval_run / "run" / "decoder" / "model"
    tokenizer = AutoTokenizer.from_pretrained(str(model))
    long_answer = {**ITEM, "choices": [" כן", " " + " ".join(HEBREW[:12])]}
    task = check_task(write_mc(tmp_path, [{**ITEM, "query": "אחרת"}], [ITEM, long_answer]))
    short = max(len(tokenizer(" " + c.strip(), add_special_tokens=False)["input_ids"]) for c in ITEM["choices"])
    check_continuations(task, tokenizer, 256, model)  # every answer fits
    with pytest.raises(ValueError, match=rf"eval\.max_length {short} is shorter than an answer of task t "
                                         r"\(.*t\.test\.jsonl:2: \d+ tokens"):
        check_continuations(task, tokenizer, short, model)


def test_models_get_distinct_names_or_the_command_refuses_before_loading(tmp_path):
    from hebrew_lm.cli import main
    from hebrew_lm.evaluate.config import EvalConfig
    from hebrew_lm.evaluate.stage import model_names

    a, b = tmp_path / "a" / "cpt" / "model", tmp_path / "b" / "cpt" / "model"
    assert model_names([a, b], []) == ["a/cpt", "b/cpt"]  # two stages' models of one name, told apart
    assert model_names([a, tmp_path / "other"], []) == ["cpt", "other"]
    assert model_names([a, b], ["A", "B"]) == ["A", "B"]
    with pytest.raises(ValueError, match="each model needs its own name"):
        model_names([a, b], ["x y", "x_y"])  # one folder name for both
    with pytest.raises(ValueError, match="the same folder given twice"):
        model_names([a, a], [])
    with pytest.raises(ValueError, match=r"eval\.model_names: each model needs its own name"):
        EvalConfig(output_dir="o", models=[str(a), str(b)], model_names=["same", "same"])
    assert main(["eval", "--models", str(a), str(b), "--model_names", "same", "same", "--output_dir",
                 str(tmp_path / "e")]) == 2


def test_one_embedded_task_by_its_name(eval_run, tmp_path):
    """`eval --tasks he_sentiment` was refused: only `embedded` (all seven) was known."""
    from hebrew_lm.evaluate.config import EvalConfig
    from hebrew_lm.evaluate.stage import collect_tasks

    model = str(eval_run / "run" / "decoder" / "model")
    config = EvalConfig(output_dir=str(tmp_path / "e"), models=[model], tasks=["he_sentiment", "he_cloze"],
                        hebrew_corpus_dir=str(eval_run / "run" / "hebrew_corpus"))
    tasks, specs = collect_tasks(config, tmp_path / "tasks")
    assert tasks == ["he_cloze", "he_sentiment"] and {"he_cloze", "he_sentiment"} <= set(specs)
    with pytest.raises(ValueError, match=r"no task YAML for \['en_cloze'\].*embedded tasks: he_cloze, en_cloze"):
        collect_tasks(EvalConfig(output_dir=str(tmp_path / "e"), models=[model], tasks=["en_cloze"]), tmp_path / "t2")
