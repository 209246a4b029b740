"""Using published models: Landslide4Sense submissions and georeferenced scene masks, in one
process or as Ray Data batch inference (`jobs/predict.py`)."""

from swinls.prediction.errors import PredictionError
from swinls.prediction.model import Decision, Normalizer, Predictor, load_for_prediction
from swinls.prediction.run import PredictionReport, PredictOptions, predict
from swinls.prediction.windows import StripBlender, WindowGrid

__all__ = ["Decision", "Normalizer", "PredictOptions", "PredictionError", "PredictionReport", "Predictor",
           "StripBlender", "WindowGrid", "load_for_prediction", "predict"]
