"""`hebrew-lm report`: one page about a whole run, as `report/index.html` (a single self-contained file:
images inlined, no server, no scripts) and `report/report.md` (images beside it in report/img/).

    hebrew-lm report configs/tiny.yaml

`page` holds a section's shape and renders the page; `sections` has each stage's section (the stage
registry, `hebrew_lm.stages`, names the function for each stage) and the environment; `stage` runs it.
A stage that has not run is said so.
"""
