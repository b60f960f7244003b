"""SFT data: conversations read and checked, the embedded demo mix, the chat template, and encoding
with the assistant's tokens marked (the only ones that carry loss).

A conversation file is JSONL, one conversation per line, either
    {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
or  {"prompt": "...", "completion": "..."}          (one user turn and one assistant turn)
Every line must be a JSON object with at least one assistant turn, the user's turn first (after an
optional system turn) and no empty content; anything else
stops with the file, the line and the problem. A conversation longer than `max_seq_len` tokens is
dropped and counted (cutting it would train on an answer without its end-of-turn token).

The embedded demo mix (`embedded:sft-demo`) is built from package data, held out from every eval set,
a demo of the format and not instruction data (no Hebrew instruction set ships in any registry
package); docs/sft.md gives its sizes and templates:
- translation: Hebrew <-> English Bible verse requests, from the Hebrew corpus's **train** split (the
  eval's verse tasks use the validation split), aligned with the KJV (Debian bible-kjv);
- arithmetic: Hebrew word problems with worked answers, the eval's generator with other seeds, every
  question the eval uses left out;
- entities: named-entity extraction from Hebrew Treebank **train** sentences, answered as JSON;
- sentiment: the sentiment demo's train comments (the eval scores its test split);
- english: continue-the-text requests from the English corpus's train split.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("system", "user", "assistant")
TURN_START, TURN_END = "<|im_start|>", "<|im_end|>"
# ChatML, with the assistant's content and its end-of-turn token inside {% generation %}: transformers'
# `return_assistant_tokens_mask` marks exactly those tokens, so the end-of-turn token is trained.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SYSTEM_PROMPTS = ("אתה עוזר מועיל שעונה בעברית ובאנגלית.", "You are a helpful assistant who answers in Hebrew and English.")
DEMO_SOURCES = ("translation", "arithmetic", "entities", "sentiment", "english")


@dataclass
class Conversation:
    messages: list[dict[str, str]]
    source: str
    where: str


def check_messages(messages: Any, where: str) -> list[dict[str, str]]:
    """The one rule for a conversation: a list of {role, content} turns, known roles, no empty content,
    at least one assistant turn, and the user's turn first (after an optional system turn)."""
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: `messages` must be a non-empty list of turns")
    for i, turn in enumerate(messages):
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            raise ValueError(f"{where}: turn {i + 1} must be an object with `role` and `content`")
        if turn["role"] not in ROLES:
            raise ValueError(f"{where}: turn {i + 1} has unknown role {turn['role']!r} (roles: {', '.join(ROLES)})")
        if not isinstance(turn["content"], str) or not turn["content"].strip():
            raise ValueError(f"{where}: turn {i + 1} ({turn['role']}) has empty content")
    if not any(t["role"] == "assistant" for t in messages):
        raise ValueError(f"{where}: no assistant turn (nothing to learn from)")
    first = next(t["role"] for t in messages if t["role"] != "system")
    if first != "user":  # an answer to nothing: the chat template has no prompt to show for it
        raise ValueError(f"{where}: the conversation opens with the assistant's turn; the user speaks first "
                         "(after an optional system turn)")
    return [{"role": t["role"], "content": t["content"]} for t in messages]


def read_conversations(path: Path, source: str) -> list[Conversation]:
    """A JSONL file of conversations (messages, or prompt/completion), every line checked."""
    from hebrew_lm.records import jsonl_records

    out = []
    for n, row in jsonl_records(path):
        where = f"{path}:{n}"
        if "messages" in row:
            messages = row["messages"]
        elif "prompt" in row and "completion" in row:
            messages = [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["completion"]}]
        else:
            raise ValueError(f"{where}: expected `messages`, or `prompt` and `completion`")
        out.append(Conversation(check_messages(messages, where), source, where))
    if not out:
        raise ValueError(f"{path}: no conversations")
    return out


PUBLIC_CHATS = {"heq": "reading comprehension: a HeQ (SQuAD-style JSON) file's answerable questions",
                "smcd": "sentiment: an SMCD `comment<TAB>label` file",
                "hebnli": "translation both ways: a HebNLI JSONL file's English sentences and their Hebrew translations"}
"""Public sets read as conversations: an input `FORMAT:PATH` (heq:val.json) is a source named FORMAT."""


def heq_request(context: str, question: str) -> str:
    """The user's turn of a HeQ question: the chat model's zero-shot prompt is the one it was trained on."""
    return f"קראו את הקטע וענו על השאלה בציטוט קצר מתוך הקטע.\n\nקטע: {context.strip()}\nשאלה: {question.strip()}"


def public_conversations(kind: str, path: Path, seed: int = 0) -> list[Conversation]:
    """A public set's file as conversations (PUBLIC_CHATS), read by the eval's converter of the same set
    (one reader for each format), so the chat model's training rows are those the eval would build."""
    from hebrew_lm.embedded.sentiment_demo import LABELS, SENTIMENT_WORDS
    from hebrew_lm.evaluate.public import PUBLIC, convert_heq, convert_smcd, read_jsonl

    rng = random.Random(seed)
    if kind == "heq":
        rows = convert_heq(path, PUBLIC["heq"][1])
        return [_chat(rng, heq_request(r["context"], r["question"]), r["answers"][0], kind, r["where"]) for r in rows]
    if kind == "smcd":
        words = "/".join(SENTIMENT_WORDS[label] for label in LABELS)
        return [_chat(rng, f"מה הסנטימנט של התגובה? ענו במילה אחת: {words}.\n\n{r['query'].removesuffix(chr(10) + 'סנטימנט:')}",
                      r["choices"][r["gold"]].strip(), kind, r["where"]) for r in convert_smcd(path, PUBLIC["smcd"][1])]
    out = []
    for where, r in read_jsonl(path, ("sentence1", "translation1", "sentence2", "translation2")):
        for english, hebrew in ((r["sentence1"], r["translation1"]), (r["sentence2"], r["translation2"])):
            if english.strip() and hebrew.strip():
                to_hebrew = rng.random() < 0.5
                out.append(_chat(rng, f"תרגמו לעברית: {english.strip()}" if to_hebrew else
                                 f"Translate into English: {hebrew.strip()}",
                                 (hebrew if to_hebrew else english).strip(), kind, where))
    if not out:
        raise ValueError(f"{path}: no sentence pairs")
    return out


def _chat(rng: random.Random, user: str, assistant: str, source: str, where: str) -> Conversation:
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    if rng.random() < 0.5:
        messages.insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    return Conversation(messages, source, where)


def demo_conversations(hebrew_corpus: Path | None, english_corpus: Path | None,
                       per_source: int = 600, seed: int = 0) -> dict[str, list[Conversation]]:
    """The embedded demo mix, {source: conversations}; a source whose data is missing is left out."""
    from hebrew_lm.corpus.shards import read_records, read_texts
    from hebrew_lm.embedded.arithmetic import arithmetic_items, eval_arithmetic_questions
    from hebrew_lm.embedded.htb_ner import ENTITY_TYPES, read_htb_ner
    from hebrew_lm.embedded.kjv import kjv_chapters, verse_pairs
    from hebrew_lm.embedded.sentiment_demo import SENTIMENT_WORDS, sentiment_demo
    from hebrew_lm.labels import entities

    rng = random.Random(seed)
    mix: dict[str, list[Conversation]] = {}
    kjv = kjv_chapters() if hebrew_corpus is not None else None
    if kjv is not None:
        pairs = verse_pairs(read_records(hebrew_corpus, "train", ("id", "text")), kjv)
        pairs = rng.sample(pairs, min(per_source, len(pairs)))
        mix["translation"] = [
            _chat(rng, f"תרגם לאנגלית: {p['he']}", p["en"], "translation", f"{p['chapter']}:{p['verse']}")
            if i % 2 == 0 else
            _chat(rng, f"Translate into Hebrew: {p['en']}", p["he"], "translation", f"{p['chapter']}:{p['verse']}")
            for i, p in enumerate(pairs)]
    taken = eval_arithmetic_questions()
    problems = [p for p in arithmetic_items(3 * per_source, seed=21) if p["question"] not in taken]
    mix["arithmetic"] = [_chat(rng, p["question"], p["work"], "arithmetic", f"template seed 21, item {i + 1}")
                         for i, p in enumerate(problems[:per_source])]
    extraction = []
    for sentence in read_htb_ner()["train"]:
        found = [{"text": " ".join(sentence.words[start:end]), "type": ENTITY_TYPES[kind]}
                 for kind, start, end in entities(sentence.tags)]
        extraction.append(_chat(rng, f"חלץ את הישויות בעלות השם מהמשפט והחזר רשימת JSON: {' '.join(sentence.words)}",
                              json.dumps(found, ensure_ascii=False), "entities", sentence.where))
        if len(extraction) >= per_source:
            break
    mix["entities"] = extraction
    mix["sentiment"] = [_chat(rng, f"מה הסנטימנט של התגובה הבאה? {e.text}", SENTIMENT_WORDS[e.label], "sentiment", e.where)
                        for e in sentiment_demo()["train"][24:]]  # the eval's shots are its first 24
    if english_corpus is not None:
        english = []
        for i, text in enumerate(read_texts(english_corpus, "train")):
            words = text.split()
            if len(words) >= 50:
                english.append(_chat(rng, f"Continue the text: {' '.join(words[:30])}", " ".join(words[30:50]),
                                     "english", f"{english_corpus} train document {i + 1}"))
            if len(english) >= per_source:
                break
        mix["english"] = english
    return {k: v for k, v in mix.items() if v}


def is_validation(conversation: Conversation, fraction: float) -> bool:
    """A conversation's split, from a hash of its content: the same on every run and machine."""
    digest = hashlib.sha256(json.dumps(conversation.messages, ensure_ascii=False).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def chat_template(base_dir: Path) -> str:
    """The chat template for a base: ChatML, opened by the base's BOS when its tokenizer starts every text
    with one (Gemma's `<bos>`), so training, `pipeline`, `hebrew-lm chat` and servers all start alike."""
    from hebrew_lm.decoder.data import base_bos

    return ("{{ bos_token }}" if base_bos(base_dir) is not None else "") + CHAT_TEMPLATE


def chat_tokenizer(base_dir: Path, dest: Path) -> Path:
    """The base's tokenizer with the chat markers added as special tokens and the chat template, in `dest`."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    missing = [t for t in (TURN_START, TURN_END) if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
    tokenizer.chat_template = chat_template(base_dir)
    tmp = dest.with_name(dest.name + ".tmp")
    tokenizer.save_pretrained(str(tmp))
    tmp.replace(dest)
    return dest


def encode(tokenizer, conversation: Conversation) -> tuple[list[int], list[int]]:
    """Token ids of the conversation in the chat template, and 1 on each token the assistant wrote."""
    out = tokenizer.apply_chat_template(conversation.messages, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    return list(out["input_ids"]), list(out["assistant_masks"])
