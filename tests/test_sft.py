"""`hebrew-lm sft` and `hebrew-lm chat`: conversations, the chat template, the assistant-only loss."""

from __future__ import annotations

import io
import json
import random

import pytest
import torch
import torch.nn.functional as F
import yaml

from hebrew_lm.decoder.objective import chunked_causal_lm_loss
from hebrew_lm.sft.data import TURN_END, Conversation, chat_tokenizer, encode, read_conversations

from helpers import crash_at_step, logged_losses

HEBREW = ("ויאמר אלהים אל משה לאמר דבר אל בני ישראל ואמרת אליהם כי תבאו אל הארץ אשר אני נתן לכם "
          "המשנה אומרת שהאדם חייב לברך על הטובה כשם שהוא מברך על הרעה").split()
ENGLISH = ("now is the winter of our discontent made glorious summer by this sun of york friends romans "
           "countrymen lend me your ears i come to bury caesar not to praise him").split()


def lines(words, n, seed, length=(55, 70)):
    rng = random.Random(seed)
    return "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(*length))) for _ in range(n)) + "\n"


def chats(path, n, seed):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        rows.append({"messages": [{"role": "user", "content": f"כמה זה {a} ועוד {b}?"},
                                  {"role": "assistant", "content": f"{a} ועוד {b} הם {a + b}."}]}
                    if i % 2 else {"prompt": f"ספור עד {a}", "completion": " ".join(str(k) for k in range(1, a + 1))})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path



@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    """A tiny decoder, then SFT on a conversation file and the embedded demo mix, weighted."""
    from hebrew_lm.cli import main

    root = tmp_path_factory.mktemp("sft")
    (root / "en.txt").write_text(lines(ENGLISH, 200, 1), encoding="utf-8")
    (root / "he.txt").write_text(lines(HEBREW, 200, 2), encoding="utf-8")
    chats(root / "math.jsonl", 60, 3)
    corpus = {"min_hebrew_ratio": 0.0, "num_workers": 1, "near_dedup": False, "validation_fraction": 0.1, "min_words": 3}
    train = {"global_batch_size": 8, "micro_batch_size": 4, "warmup_steps": 1, "log_every": 1, "eval_batches": 1}
    run = root / "run"
    data = {"run_dir": str(run), "stages": ["corpus", "tokenizer", "decoder", "hebrew_corpus", "sft", "report"],
            "corpus": {**corpus, "inputs": [str(root / "en.txt")]},
            "hebrew_corpus": {"stage": "corpus", **corpus, "inputs": [str(root / "he.txt")]},
            "tokenizer": {"vocab_size": 400, "audit": False},
            "decoder": {**train, "max_seq_len": 64, "max_steps": 4, "eval_every": 4, "checkpoint_every": 4},
            "sft": {**train, "init_from": str(run / "decoder" / "model"), "tokenizer_dir": str(run / "decoder" / "model"),
                    "max_seq_len": 160, "max_steps": 6, "eval_every": 3, "checkpoint_every": 2, "per_source": 40,
                    "inputs": [str(root / "math.jsonl"), "embedded:sft-demo"],
                    "weights": ["math=2", "arithmetic=1", "entities=1", "sentiment=1", "english=1"]}}
    (root / "p.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    assert main(["run", str(root / "p.yaml")]) == 0
    return root


def test_the_loss_mask_keeps_only_the_named_positions():
    torch.manual_seed(0)
    hidden, head = torch.randn(2, 6, 8), torch.nn.Linear(8, 11)
    ids = torch.randint(0, 11, (2, 6))
    attention = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    loss_mask = torch.tensor([[0, 0, 1, 1, 0, 1], [0, 1, 1, 0, 1, 1]])  # the padded ones must not count
    got = chunked_causal_lm_loss(hidden, head, ids, attention, 3, loss_mask)
    want = [F.cross_entropy(head(hidden[b, t - 1])[None], ids[b, t][None])
            for b in range(2) for t in range(1, 6) if loss_mask[b, t] and attention[b, t]]
    assert got.item() == pytest.approx(torch.stack(want).mean().item(), rel=1e-5)
    assert len(want) == 5


def test_the_template_supervises_exactly_the_assistants_turns_and_its_end_of_turn(sft_run, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(chat_tokenizer(sft_run / "run" / "decoder" / "model", tmp_path / "t")))
    conv = Conversation([{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "שלום"},
                         {"role": "assistant", "content": "שלום לך"}, {"role": "user", "content": "ומה עוד?"},
                         {"role": "assistant", "content": "That is all."}], "x", "x")
    ids, mask = encode(tokenizer, conv)
    supervised = tokenizer.decode([i for i, m in zip(ids, mask) if m])
    assert supervised == f"שלום לך{TURN_END}That is all.{TURN_END}"
    assert tokenizer.decode(ids).startswith("<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nשלום")
    prompt = tokenizer.apply_chat_template(conv.messages[:2], add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_a_new_end_of_turn_starts_where_the_base_ends_a_text(sft_run, tmp_path):
    """Gemma's SFT answers never stopped: <|im_end|> began as a mean row (log-probability -14 after an
    answer) that 42 steps did not teach. The grown base predicts it exactly as it predicts its end of text,
    keeps its own rows, and gives <|im_start|> (never a target) the mean of its rows, here where the markers
    land in the tiny base's padding rows (372 tokens, 376 rows)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hebrew_lm.decoder.stage import build_decoder
    from hebrew_lm.sft.config import SftConfig
    from hebrew_lm.sft.data import TURN_START

    base = sft_run / "run" / "decoder" / "model"
    tokenizer = AutoTokenizer.from_pretrained(str(chat_tokenizer(base, tmp_path / "t")))
    old = AutoModelForCausalLM.from_pretrained(str(base)).get_input_embeddings().weight
    known = len(AutoTokenizer.from_pretrained(str(base)))
    end, start = tokenizer.convert_tokens_to_ids(TURN_END), tokenizer.convert_tokens_to_ids(TURN_START)
    assert min(end, start) >= known  # the markers are new to this base
    model = build_decoder(SftConfig(init_from=str(base), tokenizer_dir=str(tmp_path / "t"), output_dir=str(tmp_path / "o"),
                                    cache_dir=str(tmp_path / "c")),
                          tokenizer, {}).eval()
    rows = model.get_input_embeddings().weight
    assert torch.equal(rows[:known], old[:known])
    assert torch.allclose(rows[start], old[:known].mean(0), atol=1e-6)
    ids = torch.tensor([tokenizer("שלום לך, מה שלומך?", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logp = model(ids).logits[0].log_softmax(-1)
    assert torch.equal(logp[:, end], logp[:, tokenizer.eos_token_id])
    assert (logp[:, end] > logp.median(-1).values).all()  # a mean row sits in the middle of the vocabulary


@pytest.mark.parametrize("line, message", [
    ("{not json", r"c\.jsonl:2: not valid JSON"),
    ('{"messages": [{"role": "user", "content": "hi"}]}', r"c\.jsonl:2: no assistant turn"),
    ('{"messages": [{"role": "bot", "content": "hi"}]}', r"c\.jsonl:2: turn 1 has unknown role 'bot'"),
    ('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]}',
     r"c\.jsonl:2: turn 2 \(assistant\) has empty content"),
    ('{"text": "hi"}', r"c\.jsonl:2: expected `messages`, or `prompt` and `completion`"),
    # once it trained, then failed at export ("Cannot apply chat template to an empty conversation")
    ('{"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "hi"}, '
     '{"role": "user", "content": "a"}]}', r"c\.jsonl:2: the conversation opens with the assistant's turn"),
])
def test_bad_conversation_lines_stop_with_the_file_line_and_problem(tmp_path, line, message):
    good = '{"prompt": "a", "completion": "b"}'
    (tmp_path / "c.jsonl").write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_conversations(tmp_path / "c.jsonl", "c")


def test_sft_trains_on_the_weighted_mix_and_exports_a_chat_model(sft_run):
    from transformers import AutoTokenizer, pipeline

    out = sft_run / "run" / "sft"
    stats = json.loads((out / "stats.json").read_text())
    sources = stats["sources"]
    assert {"math", "arithmetic", "entities", "sentiment", "english"} <= set(sources)
    # 8 slots by weights 2:1:1:1:1 (largest remainders): math 3, arithmetic 2 (first of the tied), the rest 1
    assert [sources[n]["slots_per_batch"] for n in ("math", "arithmetic", "english", "entities", "sentiment")] == [3, 2, 1, 1, 1]
    assert sum(s.get("slots_per_batch", 0) for s in sources.values()) == 8
    assert sources["math"]["conversations"] == 60 and sources["math"]["train"] + sources["math"]["validation"] == 60
    assert sources["entities"]["dropped"]["too_long"] > 0  # treebank sentences beyond 160 tokens: dropped, counted
    assert 0 < stats["supervised_share"] < 1
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"val_loss"' in x]
    assert [r["step"] for r in evals] == [3, 6]
    tokenizer = AutoTokenizer.from_pretrained(str(out / "model"))
    assert tokenizer.chat_template and TURN_END in tokenizer.get_vocab()
    generation = json.loads((out / "model" / "generation_config.json").read_text())
    assert tokenizer.convert_tokens_to_ids(TURN_END) in generation["eos_token_id"]
    chat = pipeline("text-generation", model=str(out / "model"))
    reply = chat([{"role": "user", "content": "כמה זה 2 ועוד 3?"}], max_new_tokens=8)[0]["generated_text"]
    assert reply[-1]["role"] == "assistant" and isinstance(reply[-1]["content"], str)
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert samples and {"source", "messages", "reference", "answer"} <= set(samples[0])
    report = (sft_run / "run" / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Supervised fine-tuning (chat)" in report and "| math |" in report


def test_a_stopped_sft_run_resumes_to_the_same_losses(sft_run, tmp_path, monkeypatch):
    from hebrew_lm.presets import load_preset, stage_config
    from hebrew_lm.sft import stage

    config = stage_config(load_preset(sft_run / "p.yaml"), "sft")
    config = type(config)(**{**vars(config), "output_dir": str(tmp_path / "sft")})
    crash_at_step(monkeypatch, 5)
    with pytest.raises(RuntimeError, match="killed"):
        stage.run(config)
    monkeypatch.undo()
    stage.run(config)  # resumes from the checkpoint at step 4

    assert logged_losses(tmp_path / "sft") == logged_losses(sft_run / "run" / "sft")


def test_chat_answers_a_hebrew_prompt_and_keeps_the_history(sft_run, capsys):
    from hebrew_lm.cli import main
    from hebrew_lm.serve.chat import chat

    model = sft_run / "run" / "sft" / "model"
    assert main(["chat", str(model), "--prompt", "כמה זה 2 ועוד 3?", "--max_new_tokens", "6", "--bidi", "off"]) == 0
    assert capsys.readouterr().out.strip()
    stdin, stdout = io.StringIO("שלום\n/reset\nמה שלומך?\n/exit\n"), io.StringIO()
    assert chat(model, max_new_tokens=4, bidi="off", stdin=stdin, stdout=stdout) == 0
    assert stdout.getvalue().count("> ") == 4  # two answers, a reset, and the exit


def test_chat_refuses_a_model_without_a_chat_template(sft_run, caplog):
    from hebrew_lm.cli import main

    assert main(["chat", str(sft_run / "run" / "decoder" / "model"), "--prompt", "hi"]) == 2
    assert "has no chat template; make a chat model with `hebrew-lm sft`" in caplog.text


def test_display_reorders_hebrew_lines_for_terminals():
    from hebrew_lm.serve.chat import Display

    out = io.StringIO()
    display = Display(out, bidi=True)
    for piece in ("שלום ", "עולם\nab", "c"):
        display.write(piece)
    display.close()
    assert out.getvalue() == "םלוע םולש\nabc\n"


def test_chat_refuses_an_empty_prompt_before_loading_the_model(tmp_path, caplog):
    from hebrew_lm.cli import main

    for flags, message in ((["--prompt", " "], "--prompt is empty"), (["--prompt", "hi", "--system", ""], "--system is empty")):
        caplog.clear()
        assert main(["chat", str(tmp_path / "no-model-here"), *flags]) == 2
        assert message in caplog.text and "no-model-here" not in caplog.text  # refused before any load


def test_public_sets_become_conversations_from_their_own_files(tmp_path):
    """heq:, smcd: and hebnli: inputs read the public files in their own formats (the eval's readers), the
    answer as the assistant's turn, and name their source; the fingerprint follows the file's bytes."""
    from hebrew_lm.sft.stage import inputs_fingerprint, load_sources

    squad = {"data": [{"paragraphs": [{"context": "הכנסת נמצאת בירושלים.", "qas": [
        {"question": "היכן נמצאת הכנסת?", "id": "1", "answers": [{"text": "בירושלים", "answer_start": 12}]},
        {"question": "מי?", "id": "2", "is_impossible": True, "answers": []}]}]}]}
    (tmp_path / "val.json").write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "train.tsv").write_text("comment\tlabel\nכל הכבוד\t0\nבושה\t1\n", encoding="utf-8")
    (tmp_path / "nli.jsonl").write_text(json.dumps({"sentence1": "The dog ran.", "translation1": "הכלב רץ.",
                                                    "sentence2": "A cat sat.", "translation2": "חתול ישב."},
                                                   ensure_ascii=False) + "\n", encoding="utf-8")
    inputs = [f"heq:{tmp_path / 'val.json'}", f"smcd:{tmp_path / 'train.tsv'}", f"hebnli:{tmp_path / 'nli.jsonl'}"]
    sources = load_sources(inputs, "", "", 600, 0)
    assert {k: len(v) for k, v in sources.items()} == {"heq": 1, "smcd": 2, "hebnli": 2}
    heq = sources["heq"][0].messages
    assert heq[-1] == {"role": "assistant", "content": "בירושלים"}
    assert "קטע: הכנסת נמצאת בירושלים.\nשאלה: היכן נמצאת הכנסת?" in heq[-2]["content"]
    assert [c.messages[-1]["content"] for c in sources["smcd"]] == ["חיובי", "שלילי"]
    pairs = {(c.messages[-2]["content"], c.messages[-1]["content"]) for c in sources["hebnli"]}
    assert pairs <= {("תרגמו לעברית: The dog ran.", "הכלב רץ."), ("Translate into English: הכלב רץ.", "The dog ran."),
                     ("תרגמו לעברית: A cat sat.", "חתול ישב."), ("Translate into English: חתול ישב.", "A cat sat.")}
    before = inputs_fingerprint(inputs)
    (tmp_path / "train.tsv").write_text("comment\tlabel\nכל הכבוד\t0\nבושה\t2\n", encoding="utf-8")
    assert inputs_fingerprint(inputs) != before
    (tmp_path / "train.tsv").write_text("comment\tlabel\nכל הכבוד\t0\nבושה\t7\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"train\.tsv:3: label '7'"):
        load_sources(inputs, "", "", 600, 0)
