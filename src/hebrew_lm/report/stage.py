"""The report stage: every reported stage's section, then the environment, into OUTPUT/index.html and
OUTPUT/report.md, rebuilt on every run inside a folder the report stage made."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from hebrew_lm.config import to_dict
from hebrew_lm.report.config import ReportConfig
from hebrew_lm.report.page import render_html, render_markdown
from hebrew_lm.report.sections import environment_section
from hebrew_lm.runs import atomic_write_text, clear_owned_dir, dump_yaml, is_finished, mark_success, read_success

log = logging.getLogger("hebrew_lm")


def run(config: ReportConfig, force: bool = False) -> Path:
    """Gather what the run's stages wrote into OUTPUT/index.html and OUTPUT/report.md. Always rebuilt:
    it is seconds, and the stages behind it may have changed."""
    from hebrew_lm.stages import DEFAULT_STAGES, STAGES  # the one upward import: the report is about every stage

    out = Path(config.output_dir)
    started = time.time()
    stages = config.stages or DEFAULT_STAGES
    unknown = [name for name in stages if (name.partition("=")[2] or name) not in STAGES]
    if unknown:
        raise ValueError(f"report.stages: unknown stage(s) {unknown}; choose from {list(STAGES)}")
    entries = [(entry.partition("=")[0], STAGES[entry.partition("=")[2] or entry]) for entry in stages]
    reported = [(name, stage) for name, stage in entries if stage.report]
    # each stage's folder: where the preset put it, else RUN_DIR/<its name>, beside the report's
    folders = {name: Path(config.folders.get(name) or out.parent / name) for name, stage in reported}
    sections = []
    for name, stage in reported:
        for section in stage.report_sections(folders[name]):
            if name != stage.name:  # a second instance: its own id (image names) and title
                section.id, section.title = f"{name}-{section.id}", f"{section.title}: {name}"
            sections.append(section)
    summary = [line for section in sections for line in section.summary]
    sections.append(environment_section(Path(config.timings), started))

    # The report is always rebuilt, but only inside a folder the report stage provably made.
    clear_owned_dir(out, "report", "rebuilding the report")
    (out / "img").mkdir()
    images: dict[Path, str] = {}
    for s in sections:
        for _, path in s.images:
            name = f"{s.id}-{path.name}"
            shutil.copy2(path, out / "img" / name)
            images[path] = name
    atomic_write_text(out / "report.md", render_markdown(config.title, summary, sections, images))
    atomic_write_text(out / "index.html", render_html(config.title, summary, sections))
    atomic_write_text(out / "config.yaml", dump_yaml(to_dict(config)))
    fingerprints = {f"{name}_dir": read_success(f).get("fingerprint") if is_finished(f) else None
                    for name, f in folders.items()}
    mark_success(out, "", stage="report", inputs=fingerprints)
    log.info("report: -> %s", out / "index.html")
    return out
