"""nnlab: declarative experiments and ablations for neural networks.

Importing the package is cheap: TensorFlow, Keras, MLflow and Optuna are imported
only by the modules that use them, so the command line starts instantly.
"""

__version__ = "0.1.0"
