"""hebrew-lm: build, adapt and evaluate Hebrew language models end to end.

    import hebrew_lm
    hebrew_lm.run("configs/tiny.yaml")          # what `hebrew-lm run configs/tiny.yaml` does
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # `hebrew_lm.run` without importing every stage's config whenever any module of the package loads
    if name == "run":
        from hebrew_lm.pipeline import run

        return run
    raise AttributeError(f"module 'hebrew_lm' has no attribute {name!r}")
