"""Seeds, set right before each model is built or trained."""
from __future__ import annotations

import os
import random
import sys

import numpy as np


def seed_everything(seed: int = 42) -> int:
    """Seed Python, NumPy, PyTorch and (if it is already imported) Keras.

    Keras is only seeded when the notebook has imported it, so a PyTorch-only
    notebook does not pay for importing TensorFlow.
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    if "keras" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)
    return seed
