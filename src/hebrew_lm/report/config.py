"""The report stage's config (`hebrew-lm report --help`)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field


@dataclass
class ReportConfig:
    """`hebrew-lm report`: every stage's outputs -> one self-contained HTML page and a Markdown report."""

    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, typing.Any]] = {"timings": "timings/timings.json", "output_dir": "report"}

    output_dir: str
    """Folder for index.html (one file, images inlined) and report.md with its images (default: RUN_DIR/report)."""
    stages: list[str] = field(default_factory=list)
    """The stages to report, in order (default: the preset's `stages`; with no preset, the encoder track's); a second instance of a stage as NAME=STAGE (hebrew_corpus=corpus)."""
    folders: dict[str, str] = field(default_factory=dict)
    """Where a reported stage's folder is, by its name in `stages`, when not beside the report's (RUN_DIR/NAME): e.g. '{pretrain: other/pretrain}'; a preset fills it from any section that sets its own output_dir. A stage that has not run is reported as such."""
    timings: str = ""
    """Wall time per stage, as `hebrew-lm run` records it (default: RUN_DIR/timings/timings.json, a folder `run` owns)."""
    title: str = "hebrew-lm run report"
    """The report's title."""
