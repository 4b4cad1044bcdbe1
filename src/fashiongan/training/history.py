"""Training histories of several models gathered into one input for plots and reports."""

from __future__ import annotations

import pandas as pd


def collect_histories(**histories: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The histories by model name, in the order given.

    A Kedro node passes them as ``inputs={"vanilla AE": "autoencoders_vanilla_history", ...}``,
    so one function serves every family: the names become the plot panels and report rows.
    """
    return dict(histories)
