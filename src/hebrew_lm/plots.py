"""The one matplotlib set-up every chart uses: pyplot on the file-only Agg backend (servers and CI have no
display), imported only when a chart is drawn, so the CLI starts without it.

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
"""

from __future__ import annotations


def pyplot():
    """matplotlib.pyplot with the Agg backend selected."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
