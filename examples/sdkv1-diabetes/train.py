"""An Azure ML SDK v1 training script, unchanged: ridge regression on scikit-learn's diabetes
data, one child run per regularisation strength, as SDK v1 samples wrote them.

Run it with `python train.py` (or `python train.py --alphas 0.1 0.5 1.0`).
"""
import argparse
import os

import joblib
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from azureml.core import Dataset, Run, Workspace  # noqa: F401 - imported, never used
from azureml.core.run import _OfflineRun

parser = argparse.ArgumentParser()
parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
args = parser.parse_args()

os.makedirs("./outputs", exist_ok=True)
run = Run.get_context()
if isinstance(run, _OfflineRun):
    print("Running offline: nothing is recorded")
print("Run id:", run.id)

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
run.tag("model", "ridge")
run.add_properties({"dataset": "sklearn diabetes", "test_size": "0.2"})

errors = []
for alpha in args.alphas:
    with run.child_run("alpha {:.2f}".format(alpha)) as child:
        reg = Ridge(alpha=alpha)
        reg.fit(X_train, y_train)
        mse = mean_squared_error(y_test, reg.predict(X_test))
        child.log("alpha", alpha)
        child.log("mse", mse)
        child.parent.log("mse", mse)  # the parent charts every child's result
        run.log_row("mse by alpha", alpha=alpha, mse=mse)
        joblib.dump(reg, os.path.join("./outputs", "ridge_{:.2f}.pkl".format(alpha)))
        errors.append(mse)
        print("alpha is {:.2f}, and mse is {:.2f}".format(alpha, mse))

best = int(np.argmin(errors))
run.log("best_alpha", args.alphas[best])
run.log_list("mse_per_alpha", errors)

fig, ax = plt.subplots()
ax.plot(args.alphas, errors, marker="o")
ax.set_xlabel("alpha")
ax.set_ylabel("mse")
run.log_image("mse_vs_alpha", plot=fig)

print("Metrics:", sorted(run.get_metrics()))
