"""Explicit Bell basis for the tests' independent references (computational basis,
qubit 0 most significant; order Φ+, Ψ+, Ψ−, Φ−)."""

import numpy as np

KET0, KET1 = np.eye(2)
BELL = np.array([
    np.kron(KET0, KET0) + np.kron(KET1, KET1),  # Φ+
    np.kron(KET0, KET1) + np.kron(KET1, KET0),  # Ψ+
    np.kron(KET0, KET1) - np.kron(KET1, KET0),  # Ψ−
    np.kron(KET0, KET0) - np.kron(KET1, KET1),  # Φ−
]) / np.sqrt(2)
