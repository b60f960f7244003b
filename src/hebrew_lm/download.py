"""`hebrew-lm data download`: the public fine-tuning and evaluation benchmarks, fetched at pinned commits and checked.

Each file comes from its canonical GitHub repository at a fixed commit and must match the sha256
recorded here (taken from those commits); a mismatch is an error and nothing half-written is kept.
Tests never call this: they use the embedded tasks.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.parse
import urllib.request
from pathlib import Path

from hebrew_lm.runs import atomic_write_bytes, atomic_write_text, check_output_path, claim_output_dir, inside

log = logging.getLogger("hebrew_lm")

# name -> (repository, commit, folder inside the repository whose layout is kept)
SOURCES = {
    "nemo": ("OnlpLab/NEMO-Corpus", "38b10235a22998774311ab78a0078c8fb7dea57c", "data"),
    "bmc": ("OnlpLab/HebrewResources", "3213134010bb1e2c58b7ee3391e7b9c21d5b9209", "BMCNER"),
    "smcd": ("OnlpLab/Hebrew-Sentiment-Data", "3ae441366b75f776c9ca32e919e51413d5a2bc87", ""),
    # Evaluation sets for `hebrew-lm eval` (CC BY 4.0 / MultiNLI-derived); their train files are not fetched
    # (HeQ's v1.1 train is 4 MB and unused for few-shot; HebNLI's train is a Git-LFS object).
    "heq": ("NNLP-IL/Hebrew-Question-Answering-Dataset", "f46d2ff1b796a95e897530f167ae0d5bed123fe1", "data/data v1.1"),
    "hebnli": ("NNLP-IL/HebNLI", "c51d790b7ebf570119db285a4eb6e3c455db037a", ""),
}
# Where the raw files are served; HEBREW_LM_DATA_MIRROR points elsewhere (a mirror, or file:// for tests).
BASE_URL = "https://raw.githubusercontent.com"

FILES = {
    "nemo": [
        ("spmrl/gold/token-single_gold_train.bmes", "f4ddff8b17d942857f22631ac6afb6ecec7d4305d5ebf0dcb6f5c5e397c780e5"),
        ("spmrl/gold/token-single_gold_dev.bmes", "83e584376f174a63cebf32b6dcc4269b43fa0a432825edaf514d0ea775d2f25c"),
        ("spmrl/gold/token-single_gold_test.bmes", "6c0ebd10170d1197121cad86243161e99a130d448b91dad89959c90e0dbffe30"),
        ("spmrl/gold/token-multi_gold_train.bmes", "8ac610b19d9d4183e0c8bc012ac61348491809779d7cad0c3e656e2c9a6ea2a0"),
        ("spmrl/gold/token-multi_gold_dev.bmes", "11f14103ed87917ba973cd030fe7b9fe02494547453be16e63cceb09060acc12"),
        ("spmrl/gold/token-multi_gold_test.bmes", "f687ef88a1cbe273130ec16709ad42355e4a656a941a4eec257dff84c6aeee0a"),
        ("spmrl/gold/morph_gold_train.bmes", "bad471f09c511b15eb7859fa18128f5d28a26fcbeeba719f46f08f92f2088af8"),
        ("spmrl/gold/morph_gold_dev.bmes", "744d314fec35f494e5b2ff43aa9faf0114f5f46eac8ad9b1caaca37f9603ace3"),
        ("spmrl/gold/morph_gold_test.bmes", "22ed93858d1563915ab0c6a54dc2935a291bd660f9df6a8c5e4651bf228eca2a"),
        ("ud/gold/token-single_gold_train.bmes", "f96b883a0a7df6cdecae1db84afca37f60930ea1103579cfec9ff141b66c8dd3"),
        ("ud/gold/token-single_gold_dev.bmes", "e942e6ce9a579354d7f8e0bcd9e33b00290172876ce9858ead2de52a35dc9852"),
        ("ud/gold/token-single_gold_test.bmes", "bd2971b67a39e6154981628da4977cdf0ac9e9833f21fce623fa699f6fc10665"),
    ],
    "bmc": [
        ("splits/bmc_split.train.1.bmes", "a10c4e1016294a4b956905b2757cccb72afb77cd593ff6b99e59e03d45714e81"),
        ("splits/bmc_split.dev.1.bmes", "737764eadd738c8c00cdc29631e2d0bb69fd2c18ba29d403901ee73c36fd4f8d"),
        ("splits/bmc_split.test.1.bmes", "1cf77333e605f9ec0a88a2210ca64d18581fa68385e2eb27ec7444e7d1c4c827"),
        ("splits/bmc_split.train.2.bmes", "9fc4823cf3d94bea1623e6cd332b901900d0458d547c7adb771943919aecb332"),
        ("splits/bmc_split.dev.2.bmes", "3f132efedab6e9e4c774eee98bf788dea4077ab92d22dceec07781fb392fa6ca"),
        ("splits/bmc_split.test.2.bmes", "043bcca5946ff4657313ee091bc9aa92272a53329c323c009c3a5fa4d4397535"),
        ("splits/bmc_split.train.3.bmes", "2dbed7c1df8575f191c2fb454b668d1d2efbe51c3f836b68b1c3a85ab8025b18"),
        ("splits/bmc_split.dev.3.bmes", "31de3352a5c5b2f072eb6c0fecbc3bf0d58b89b23ab189efff0c6b0c792018e5"),
        ("splits/bmc_split.test.3.bmes", "27bae5b6db56a388cd1f60f3901374511d8e9980224a6acaeba3b5bb5712e37c"),
    ],
    "smcd": [
        ("Sentiment_Data/token/train.tsv", "bf6d7f454fad7ea87b3aaaccb94d01f883592bb13efbb5c010140ea89d821b55"),
        ("Sentiment_Data/token/dev.tsv", "f39a890914203f336c284cb53352af46cd4803a16526887efa0601508f1adbf1"),
        ("Sentiment_Data/token/test_gold.tsv", "9c944a7a3343bbf520982b5d2f57bb935b289884601e18455968147d70ffc6be"),
        ("originial_unclean_data/token/train.tsv", "4d3d2de0161ab6acf6da61a361d9d91aea95e5f7e15d0823c6a92f1e6f07ce9c"),
        ("originial_unclean_data/token/dev.tsv", "fe767db0b98a625838c1be39bfc2c5e5e373c33c36124cd8f3b994a7a467a157"),
        ("originial_unclean_data/token/test_gold.tsv", "c4830880d997abd713e9c6806c3551eb90634ed4fb48aa235c820f93e3de2fa3"),
    ],
    "heq": [
        ("val v1.1.json", "18650c947b1a01adf180df7083c096e3bcb4279483cb7fdc67147cba1b7817ba"),
        ("test v1.1.json", "aa3c8107919bb04a95c8fc572121d07c38b23f35ac33630dea32a384d6aea5db"),
    ],
    "hebnli": [
        ("HebNLI_val.jsonl", "7439e2487da0dec8aed371eb2647c049799e6eb9b93e93b3a8b9a8c2ea95c20a"),
        ("HebNLI_test.jsonl", "7d7206e5410e18b90982854ef697c5b3c5559a36661ca2a7963945b585146a4c"),
    ],
}


def url_for(name: str, relative: str) -> str:
    repo, commit, folder = SOURCES[name]
    base = os.environ.get("HEBREW_LM_DATA_MIRROR", BASE_URL).rstrip("/")
    inside = f"{folder}/{relative}" if folder else relative
    return f"{base}/{repo}/{commit}/{urllib.parse.quote(inside)}"  # HeQ's paths hold spaces


def download(name: str, output_dir: str | Path) -> Path:
    """Fetch benchmark `name` into OUTPUT/name, keeping files already there with the right checksum."""
    if name not in SOURCES:
        raise ValueError(f"unknown data set {name!r}; choose from {', '.join(SOURCES)}")
    root = Path(output_dir)
    check_output_path(root, "data download")
    dest = claim_output_dir(inside(root, root / name, "data download"), "data download")
    for relative, sha in FILES[name]:
        path = inside(root, dest / relative, "data download")  # never through a symlink out of the folder
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha:
            continue
        url = url_for(name, relative)
        log.info("data: %s", url)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                data = response.read()
        except OSError as e:
            raise ValueError(f"data: could not fetch {url}: {e}") from None
        got = hashlib.sha256(data).hexdigest()
        if got != sha:
            raise ValueError(f"data: {url} has sha256 {got}, expected {sha}; not saved (a changed or wrong file)")
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    repo, commit, _ = SOURCES[name]
    atomic_write_text(inside(root, dest / "SOURCE.txt", "data download"), f"https://github.com/{repo} at {commit}\n")
    log.info("data: %s -> %s (%d files, checksums verified)", name, dest, len(FILES[name]))
    return dest
