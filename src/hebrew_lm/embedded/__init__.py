"""Data the project reads from installed packages (the embedded default) or writes itself."""
