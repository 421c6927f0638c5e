"""jdec: Deep Embedded Clustering (DEC) and its family in JAX and Flax."""

from jdec import (augment, checkpoint, conv, data, inference, metrics, models, parallel,  # noqa: F401
                  pretrain, recipes, runs, scan, train)
from jdec.api import fit
from jdec.estimator import DEC
from jdec.results import FitResult, SweepResult
from jdec.saving import load, save
from jdec.trained import TrainedModel
from jdec.dec import kl_loss, log_soft_assignment, soft_assignment, target_distribution
from jdec.lloyd import KMeansResult, kmeans

__version__ = "0.2.0"

__all__ = [
    "DEC", "FitResult", "KMeansResult", "SweepResult", "TrainedModel", "augment", "checkpoint",
    "conv", "data", "fit", "inference", "kl_loss", "kmeans", "load", "log_soft_assignment", "metrics",
    "models", "parallel", "pretrain", "recipes", "runs", "save", "scan", "soft_assignment",
    "target_distribution", "train",
]
