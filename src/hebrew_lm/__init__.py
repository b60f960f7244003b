"""hebrew-lm: build, adapt and evaluate Hebrew language models end to end."""

__version__ = "0.1.0"
