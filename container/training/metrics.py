"""The log lines training prints and the regexes SageMaker reads them with, kept together.

Estimators and hyperparameter tuners import METRIC_DEFINITIONS; the format strings are the
original project's, so regexes written for it keep working.
"""

TRAIN_LINE = "Train Epoch: {epoch} [{seen}/{total} ({percent:.0f}%)], Train Loss: {loss:.6f};"
TEST_LINE = "Test Average loss: {loss:.4f}, Test Accuracy: {accuracy:.2f}%;"

METRIC_DEFINITIONS = [
    {"Name": "train:loss", "Regex": r"Train Loss: ([0-9\.]+);"},
    {"Name": "test:loss", "Regex": r"Test Average loss: ([0-9\.]+),"},
    {"Name": "test:accuracy", "Regex": r"Test Accuracy: ([0-9\.]+)%;"},
]
# What a hyperparameter tuning job maximises.
OBJECTIVE_METRIC = "test:accuracy"
