"""The corpus stage on datatrove's executors builds the single-machine corpus, byte for byte."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from hebrew_lm.corpus.config import CorpusConfig, InputSpec
from hebrew_lm.corpus.stage import run
from hebrew_lm.corpus.dedup_eval import plant_duplicates

from helpers import build, corpus_files, read_rejects, read_stats, reasons


@pytest.fixture(scope="module")
def planted(tmp_path_factory, hebrew_docs):
    """Three JSONL files of Bible and Mishnah chapters with exact and near copies planted across them
    (a copy often lands in another file, so in another task, than its original), plus chains: a
    chapter, the chapter with its first verses changed, and that one with more changed, where the
    middle one is a near duplicate of both ends but the ends may not be of each other."""
    docs, _ = plant_duplicates(hebrew_docs[:240], num_exact=20, num_near=30, seed=3)
    for chapter in hebrew_docs[300:310]:
        verses = chapter.split("\n")
        if len(verses) < 20:
            continue
        k = len(verses) // 8
        docs += [chapter, "\n".join(["אחר"] * k + verses[k:]), "\n".join(["שונה"] * 2 * k + verses[2 * k:])]
    docs += ["קצר מדי"] * 4
    folder = tmp_path_factory.mktemp("planted")
    paths = []
    for f in range(3):
        path = folder / f"part-{f}.jsonl"
        path.write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs[f::3]), encoding="utf-8")
        paths.append(path)
    build(folder / "single", paths, **SETTINGS)
    return paths, corpus_files(folder / "single")


SETTINGS = dict(near_dedup=True, exact_dedup=True, validation_fraction=0.1, shuffle_buffer_mb=1)


def test_two_local_tasks_build_the_single_machine_corpus(tmp_path, planted):
    planted_files, single = planted
    build(tmp_path / "tasks2", planted_files, **SETTINGS, tasks=2)
    build(tmp_path / "tasks3", planted_files, **SETTINGS, tasks=3, workers=1)
    assert corpus_files(tmp_path / "tasks2") == single
    assert corpus_files(tmp_path / "tasks3") == single
    dropped = reasons(read_rejects(tmp_path / "tasks2"))
    assert dropped["exact_duplicate"] >= 15 and dropped["near_duplicate"] >= 20 and dropped["too_short"] == 4, dropped
    stats = read_stats(tmp_path / "tasks2")
    assert stats["executor"]["tasks"] == 2 and stats["executor"]["peak_rss_mb_per_task"]["process"] > 0
    assert stats["documents_in"] == stats["kept"]["documents"] + sum(d["documents"] for d in stats["dropped"].values())
    named = {r["where"] for r in read_rejects(tmp_path / "tasks2")}
    assert all(r["duplicate_of"] not in named for r in read_rejects(tmp_path / "tasks2") if "duplicate_of" in r)


def test_a_killed_distributed_build_resumes_from_its_completion_markers(tmp_path, planted):
    """SIGKILL `hebrew-lm corpus build --tasks 2` once the first job's tasks are marked complete, rerun:
    the finished tasks are skipped and the corpus is the uninterrupted single-machine one."""
    planted_files, single = planted
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"corpus": {
        "output_dir": str(tmp_path / "killed"), "inputs": [str(p) for p in planted_files], "tasks": 2,
        "min_words": 3, **SETTINGS}}))
    cmd = [sys.executable, "-m", "hebrew_lm", "corpus", "build", str(config)]
    completions = tmp_path / "killed" / "datatrove" / "buckets" / "completions"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not (completions.is_dir() and len(os.listdir(completions)) >= 2) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "_SUCCESS").exists(), "the build finished before the kill"
    marked = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "killed" / "datatrove" / "process" / "completions").iterdir()}
    assert len(marked) == 2
    resumed = subprocess.run(cmd, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "already been completed" in resumed.stderr or "Skipping" in resumed.stderr
    again = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "killed" / "datatrove" / "process" / "completions").iterdir()}
    assert again == marked  # the process job was not run again
    assert corpus_files(tmp_path / "killed") == single


def test_ray_with_two_workers_builds_the_single_machine_corpus(tmp_path, planted):
    ray = pytest.importorskip("ray")
    planted_files, single = planted
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        build(tmp_path / "ray", planted_files, **SETTINGS, executor="ray", tasks=2, workers=2)
    finally:
        ray.shutdown()
    assert corpus_files(tmp_path / "ray") == single
    assert read_stats(tmp_path / "ray")["executor"]["executor"] == "ray"


def test_executor_settings_are_checked_and_do_not_change_the_fingerprint(tmp_path, planted):
    planted_files, _ = planted
    with pytest.raises(ValueError, match="tasks >= 1"):
        CorpusConfig(output_dir=str(tmp_path / "x"), executor="slurm")
    slurm = CorpusConfig(output_dir=str(tmp_path / "x"), inputs=[InputSpec(path=str(planted_files[0]))],
                         executor="slurm", tasks=4)
    with pytest.raises(ValueError, match="partition and time"):
        run(slurm)
    build(tmp_path / "single", planted_files, **SETTINGS)
    # The finished single-machine build is the same build: a rerun with tasks is a no-op, not a refusal.
    build(tmp_path / "single", planted_files, **SETTINGS, tasks=2)
    assert not (tmp_path / "single" / "datatrove").exists()


def test_the_slurm_jobs_chain_and_pickle_as_sbatch_would_load_them(tmp_path, planted):
    """No Slurm here: check the six chained executors and that dill (what datatrove's Slurm launcher
    pickles the executor with) round-trips them into a job that builds the same corpus."""
    import dill

    from hebrew_lm.corpus.build import build_plan
    from hebrew_lm.corpus.distributed import JOBS, executors

    planted_files, single = planted
    config = CorpusConfig(output_dir=str(tmp_path / "slurm"), inputs=[InputSpec(path=str(p)) for p in planted_files],
                          num_workers=1, min_words=3, executor="slurm", tasks=2, **SETTINGS,
                          executor_options={"partition": "cpu", "time": "01:00:00", "venv_path": ".venv/bin/activate"})
    _, items, fp, num_buckets = build_plan(config)
    chain, executor = [], executors(config, items, fp, num_buckets)
    while executor is not None:
        chain.append(executor)
        executor = executor.depends
    chain.reverse()
    assert [e.logging_dir.path.rsplit("/", 1)[-1] for e in chain] == list(JOBS)
    assert [e.world_size for e in chain] == [2, 2, 1, 2, 2, 1]
    assert all(e.partition == "cpu" and e.time == "01:00:00" for e in chain)
    loaded = dill.loads(dill.dumps(chain[0]))
    assert loaded.pipeline[0].build.items == items and loaded.depends is None



def test_the_plan_shows_the_single_machine_index_growing_and_a_task_staying_put(tmp_path):
    from hebrew_lm.plan import corpus_cost

    single = CorpusConfig(output_dir=str(tmp_path / "c"))
    assert "single machine" in corpus_cost(single, 50e9) and "GB" in corpus_cost(single, 500e9)
    assert corpus_cost(single, 50e9) != corpus_cost(single, 500e9)  # the dedup index grows with the corpus
    spread = CorpusConfig(output_dir=str(tmp_path / "c"), executor="slurm", tasks=64)
    small, big = corpus_cost(spread, 50e9), corpus_cost(spread, 500e9)
    assert "slurm, 64 tasks" in small
    assert small.split("the largest task about ")[1] == big.split("the largest task about ")[1]
