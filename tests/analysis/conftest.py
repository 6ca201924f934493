"""Data and maps shared by the t-SNE tests (fitted once per session)."""

from __future__ import annotations

import numpy as np
import pytest

from featscope.analysis import TSNE


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 1,797 digits, float32 features and labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y


@pytest.fixture(scope="session")
def digits_map(digits):
    """featscope's default t-SNE of the digits (openTSNE engine, one thread)."""
    X, _ = digits
    return TSNE(n_jobs=1).fit(X)
