"""A 2017 Azure ML Workbench training script, unchanged: logistic regression on a toy data set.

Run it with `python train.py 0.01` (the argument is the regularisation rate).
"""
import pickle
import sys

import numpy as np

from azureml.logging import get_azureml_logger

# initialize the logger
run_logger = get_azureml_logger()

reg = float(sys.argv[1]) if len(sys.argv) > 1 else 0.01
print("Regularization rate is {}".format(reg))
run_logger.log("Regularization Rate", reg)

# a small, reproducible two-class problem
rng = np.random.RandomState(42)
X = np.vstack([rng.normal(-1.0, 1.0, (100, 2)), rng.normal(1.0, 1.0, (100, 2))])
y = np.array([0] * 100 + [1] * 100)

w = np.zeros(2)
b = 0.0
losses = []
for epoch in range(50):
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    grad_w = X.T @ (p - y) / len(y) + reg * w
    grad_b = np.mean(p - y)
    w -= 0.5 * grad_w
    b -= 0.5 * grad_b
    loss = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
    losses.append(loss)
    run_logger.log("Loss per epoch", loss)  # the same name again: the next step

accuracy = np.mean(((X @ w + b) > 0).astype(int) == y)
print("Accuracy is {}".format(accuracy))
run_logger.log("Accuracy", accuracy)
run_logger.log("Loss curve", losses)  # a list becomes a chart
run_logger.log("Model", "logistic regression")  # a string
run_logger.log("my metric 1", 1).wait()  # sent asynchronously; wait() blocks

# files written to ./outputs are uploaded at run end
with open("./outputs/model.pkl", "wb") as f:
    pickle.dump({"w": w.tolist(), "b": b}, f)
run_logger.upload("reports/summary.txt", "accuracy={:.3f}\n".format(accuracy))
