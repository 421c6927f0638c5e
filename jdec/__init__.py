"""jdec: Deep Embedded Clustering (DEC) and its family in JAX and Flax."""

from jdec import (augment, checkpoint, conv, data, metrics, models, parallel, pretrain,  # noqa: F401
                  recipes, runs, scan, train)
from jdec.api import fit
from jdec.inference import embed, predict, predict_proba
from jdec.results import FitResult, SweepResult
from jdec.dec import kl_loss, log_soft_assignment, soft_assignment, target_distribution
from jdec.lloyd import KMeansResult, kmeans

__version__ = "0.1.0"

__all__ = [
    "FitResult", "KMeansResult", "SweepResult", "augment", "checkpoint", "conv", "data",
    "embed", "fit", "kl_loss", "kmeans", "log_soft_assignment", "metrics", "models", "parallel", "predict",
    "predict_proba", "recipes", "runs", "scan", "soft_assignment", "target_distribution", "train",
]
