"""What SDK v1 showed for each script of the corpus, derived from the script's own calls.

One ``Case`` per folder of this directory. ``metrics`` is what SDK v1's ``run.get_metrics()``
returned for the run (documented shapes: a name logged once, its value; N times, the list in
call order; a table, ``{column: [values]}``; a string, the string), written from the literals
and loops of the script, never from a run of ours. Values the script computes by training are
``Floats`` (how many, within which bounds) since the training lines are stand-ins. A case that
stops has ``stops``: where the script leaves what this project covers, and how.
"""
from __future__ import annotations

import gzip
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

SOURCE_COMMIT = "f1aff553c475be391acb2e5d4e4094867b5963c0"


@dataclass(frozen=True)
class Floats:
    """``n`` numbers a script computed (one: get_metrics gave the number, more: the list)."""

    n: int
    lo: float = -math.inf
    hi: float = math.inf
    nondecreasing: bool = False  # a running best: each point at least the one before


@dataclass(frozen=True)
class Rows:
    """A table of ``n`` rows logged one ``log_row`` at a time, whose values the script drew at
    random: each value of row ``i`` lies in ``[0, i]`` (``random.randrange(0, step + 1)``)."""

    columns: tuple
    n: int


@dataclass(frozen=True)
class NotCovered:
    """The script reaches an ``azureml.core`` call this project does not cover: it must end in
    one clear error naming ``call`` and saying so (never an AttributeError), the run FAILED."""

    call: str


@dataclass(frozen=True)
class Missing:
    """The script imports an Azure ML package other than azureml-core (AutoML, HyperDrive,
    interpret, open datasets): it stops there with Python's ModuleNotFoundError naming it."""

    modules: tuple


@dataclass(frozen=True)
class Child:
    metrics: dict
    status: str = "FINISHED"


@dataclass(frozen=True)
class Case:
    folder: str
    source: str  # the file under how-to-use-azureml/ in Azure/MachineLearningNotebooks
    script: str
    args: tuple = ()
    prepare: Callable[[Path], None] | None = None
    stops: NotCovered | Missing | None = None
    metrics: dict = field(default_factory=dict)
    images: tuple = ()
    tags: dict = field(default_factory=dict)  # run.tag(): what get_tags() gave (None: no value)
    uploads: dict = field(default_factory=dict)  # upload_file name -> the local file it was
    outputs: frozenset = frozenset()  # files under ./outputs at exit (SDK v1 uploaded them all)
    logs: frozenset = frozenset()  # files under ./logs (uploaded while the run ran)
    children: tuple = ()
    stdout: tuple = ()  # lines the script prints that show it ran to where it should
    notebook: bool = False
    # a notebook's cells (by their last line) that reach a call this project does not cover,
    # with the call their one error must name; every other cell runs without error
    notebook_not_covered: dict = field(default_factory=dict)


# -- inputs the scripts read, made in each run's fresh folder ------------------------------------

def _idx(path: Path, array: np.ndarray) -> None:
    """An MNIST idx file as the samples' utils.load_data reads it (gzip, big-endian sizes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">I", 2051 if array.ndim == 3 else 2049))
        f.write(b"".join(struct.pack(">I", n) for n in array.shape))
        f.write(array.astype(np.uint8).tobytes())


def mnist(names: dict) -> Callable[[Path], None]:
    """Seeded MNIST-like digits: 300 training and 100 test images whose brightness depends on
    the label, under the file names the script globs for."""
    def prepare(folder: Path) -> None:
        rng = np.random.default_rng(1)
        for part, n in (("train", 300), ("test", 100)):
            labels = rng.integers(0, 10, n)
            images = rng.integers(0, 50, (n, 28, 28)) + (labels * 20)[:, None, None]
            _idx(folder / names[part + "-images"], images)
            _idx(folder / names[part + "-labels"], labels)
    return prepare


MNIST_GZ = {"train-images": "data/train-images.gz", "train-labels": "data/train-labels.gz",
            "test-images": "data/test-images.gz", "test-labels": "data/test-labels.gz"}
MNIST_IDX = {"train-images": "data/mnist/train-images-idx3-ubyte.gz",
             "train-labels": "data/mnist/train-labels-idx1-ubyte.gz",
             "test-images": "data/mnist/t10k-images-idx3-ubyte.gz",
             "test-labels": "data/mnist/t10k-labels-idx1-ubyte.gz"}


def iris_csv(folder: Path) -> None:
    """The iris.csv the Spark sample reads (its notebook uploads it), from scikit-learn's iris."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    lines = ["sepal-length,sepal-width,petal-length,petal-width,class"]
    lines += [",".join([*map(str, row), iris.target_names[t]]) for row, t in zip(iris.data, iris.target)]
    (folder / "iris.csv").write_text("\n".join(lines) + "\n")


def diabetes_npy(folder: Path) -> None:
    """The remote-VM sample's data folder, as its notebook makes it (np.save of load_diabetes)."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes()
    (folder / "data").mkdir()
    np.save(folder / "data" / "features.npy", data["data"])
    np.save(folder / "data" / "labels.npy", data["target"])


# -- expectations shared by several scripts ---------------------------------------------------------

ALPHAS = [float(a) for a in np.arange(0.0, 1.0, 0.05)]  # the ridge samples' alphas
RIDGE_OUTPUTS = frozenset(f"outputs/ridge_{a:.2f}.pkl" for a in ALPHAS)


def tf2_checkpoints(saves: int) -> frozenset:
    """./outputs after tf.train.Checkpoint(...).save('./outputs/') ``saves`` times and
    tf.saved_model.save(net, './outputs/model/')."""
    files = {"outputs/checkpoint", "outputs/model/saved_model.pb",
             "outputs/model/variables/variables.index",
             "outputs/model/variables/variables.data-00000-of-00001"}
    for n in range(1, saves + 1):
        files |= {f"outputs/-{n}.index", f"outputs/-{n}.data-00000-of-00001"}
    return frozenset(files)


def tf2_mnist(folder: str, source: str, data: dict, args: tuple = ()) -> Case:
    # 20 epochs, a checkpoint every second one (epochs 0, 2, ..., 18)
    return Case(folder, source, "tf_mnist.py", args, prepare=mnist(data),
                metrics={"training_acc": Floats(20, 0, 1), "validation_acc": Floats(20, 0, 1),
                         "final_acc": Floats(1, 0, 1)},
                outputs=tf2_checkpoints(10))


# the notebook's tables: log_row inside `for i in range(-10, 10)`, log_table of the same loop
ANGLES = [i / 2.0 * 2 for i in range(-10, 10)]
NOTEBOOK_COLUMNS = ("expected", "actual", "calculated", "inferred", "determined", "predicted",
                    "forecast", "speculated", "assumed", "required", "intended", "deduced",
                    "theorized", "hoped", "hypothesized")

TAXI = "machine-learning-pipelines/nyc-taxi-data-regression-model-building/scripts"

CASES = [
    Case("manage-runs-hello", "track-and-monitor-experiments/manage-runs/hello.py", "hello.py",
         metrics={"message": "Hello from run!"}),
    Case("manage-runs-hello-with-children",
         "track-and-monitor-experiments/manage-runs/hello_with_children.py", "hello_with_children.py",
         children=tuple(Child({"Hello from child run ": c}) for c in range(5))),
    Case("pipelines-register-model", "machine-learning-pipelines/intro-to-pipelines/register_model.py",
         "register_model.py", ("--saved-model", "model.pkl"),
         stops=Missing(("azureml.train",))),
    tf2_mnist("pipelines-tf-mnist", "machine-learning-pipelines/intro-to-pipelines/tf_mnist.py",
              MNIST_GZ),
    Case("rl-atari-callbacks",
         "reinforcement-learning/atari-on-distributed-compute/files/utils/callbacks.py "
         "(driven by files/pong_rllib.py)",
         "pong_rllib.py", ("--config", "pong-impala-vectorized.yaml"),
         # one trial: the reward climbs 2 a step from -21 and stops at the config's 10
         metrics={"episode_reward_mean": [-21.0 + 2.0 * k for k in range(1, 17)],
                  "episodes_total": [40 * k for k in range(1, 17)]},
         logs=frozenset({"logs/pong-impala-vectorized/IMPALA_ALE_Pong-v5/progress.csv"})),
    *(Case(f"nyc-taxi-{name.replace('_', '-')}", f"{TAXI}/{sub}/{name}.py", f"{name}.py",
           stops=NotCovered("input_datasets"))
      for sub, name in [("prepdata", "cleanse"), ("prepdata", "filter"), ("prepdata", "merge"),
                        ("prepdata", "normalize"), ("prepdata", "transform"),
                        ("trainmodel", "train_test_split")]),
    Case("retraining-check-data", "automated-machine-learning/continuous-retraining/check_data.py",
         "check_data.py", ("--ds_name", "weather", "--model_name", "weather-model"),
         stops=NotCovered("workspace")),
    Case("retraining-register-model", "automated-machine-learning/continuous-retraining/register_model.py",
         "register_model.py", ("--model_name", "weather-model", "--model_path", "outputs/model.pkl",
                               "--ds_name", "weather"),
         stops=NotCovered("workspace")),
    Case("retraining-upload-weather-data",
         "automated-machine-learning/continuous-retraining/upload_weather_data.py",
         "upload_weather_data.py", ("--ds_name", "weather"), stops=Missing(("azureml.opendatasets",))),
    Case("backtest-data-split",
         "automated-machine-learning/forecasting-backtest-single-model/assets/data_split.py",
         "data_split.py", stops=Missing(("azureml.train",))),
    Case("backtest-retrain-models",
         "automated-machine-learning/forecasting-backtest-single-model/assets/retrain_models.py",
         "retrain_models.py", stops=Missing(("azureml.automl",))),
    *(Case(f"forecasting-{folder}", f"automated-machine-learning/{source}/forecasting_script.py",
           "forecasting_script.py", ("--target_column_name", "demand", "--test_dataset", "1234"),
           stops=NotCovered("workspace"))
      for folder, source in [("bike-share", "forecasting-bike-share"),
                             ("energy-demand", "forecasting-energy-demand"),
                             ("orange-juice", "forecasting-orange-juice-sales")]),
    Case("forecasting-univariate",
         "automated-machine-learning/forecasting-recipes-univariate/forecasting_script.py",
         "forecasting_script.py", stops=Missing(("azureml.automl",))),
    Case("forecasting-github-dau-infer", "automated-machine-learning/forecasting-github-dau/infer.py",
         "infer.py", stops=Missing(("azureml.automl",))),
    *(Case(f"many-models-preprocessing-{kind}",
           f"automated-machine-learning/forecasting-many-models/scripts/data_preprocessing_{kind}.py",
           f"data_preprocessing_{kind}.py", ("--output", "prepared"), stops=NotCovered("input_datasets"))
      for kind in ("file", "tabular")),
    # azureml.data ships in the azureml-core wheel but is not azureml.core; served or not, the
    # script's next line imports AutoML
    Case("forecasting-pipelines-infer", "automated-machine-learning/forecasting-pipelines/scripts/infer.py",
         "infer.py", stops=Missing(("azureml.data", "azureml.automl"))),
    Case("forecasting-pipelines-register-model",
         "automated-machine-learning/forecasting-pipelines/scripts/register_model.py",
         "register_model.py", stops=Missing(("azureml.automl",))),
    Case("regression-explanation-train-explainer",
         "automated-machine-learning/regression-explanation-featurization/train_explainer.py",
         "train_explainer.py", stops=Missing(("interpret", "azureml.automl"))),
    Case("remote-explanation-train-explain",
         "explain-model/azure-integration/remote-explanation/train_explain.py",
         "train_explain.py", stops=Missing(("interpret", "azureml.interpret"))),
    Case("scoring-time-train-explain", "explain-model/azure-integration/scoring-time/train_explain.py",
         "train_explain.py", stops=Missing(("interpret", "azureml.interpret"))),
    Case("keras-mnist", "ml-frameworks/keras/train-hyperparameter-tune-deploy-with-keras/keras_mnist.py",
         "keras_mnist.py", ("--data-folder", "data", "--batch-size", "50", "--first-layer-neurons", "300",
                            "--second-layer-neurons", "100", "--learning-rate", "0.001"),
         prepare=mnist(MNIST_IDX),
         metrics={"Loss": Floats(20, 0), "Accuracy": Floats(20, 0, 1),
                  "Final test loss": Floats(1, 0), "Final test accuracy": Floats(1, 0, 1)},
         images=("Accuracy vs Loss",),
         outputs=frozenset({"outputs/model/model.json", "outputs/model/model.h5"}),
         stdout=("model saved in ./outputs/model folder",)),
    Case("pytorch-train",
         "ml-frameworks/pytorch/train-hyperparameter-tune-deploy-with-pytorch/pytorch_train.py",
         "pytorch_train.py", ("--num_epochs", "30", "--output_dir", "./outputs"),
         # best_val_acc: logged in both phases of every epoch, the best validation accuracy so far
         metrics={"lr": 0.001, "momentum": 0.9, "best_val_acc": Floats(60, 0, 1, nondecreasing=True)},
         outputs=frozenset({"outputs/model.pt"})),
    Case("sklearn-train-iris",
         "ml-frameworks/scikit-learn/train-hyperparameter-tune-deploy-with-sklearn/train_iris.py",
         "train_iris.py", ("--kernel", "linear", "--penalty", "1.0"),
         metrics={"Kernel type": "linear", "Penalty": 1.0, "Accuracy": Floats(1, 0, 1)},
         outputs=frozenset({"outputs/model.joblib"})),
    tf2_mnist("tf-warm-start-mnist",
              "ml-frameworks/tensorflow/hyperparameter-tune-and-warm-start-with-tensorflow/tf_mnist.py",
              MNIST_IDX, ("--data-folder", "data", "--batch-size", "64", "--first-layer-neurons", "256",
                          "--second-layer-neurons", "128", "--learning-rate", "0.01")),
    # without --resume-from: epochs 0..10 (it breaks at 10), a Saver checkpoint at 0, 5 and 10
    Case("tf-resume-mnist",
         "ml-frameworks/tensorflow/train-tensorflow-resume-training/tf_mnist_with_checkpoint.py",
         "tf_mnist_with_checkpoint.py", ("--data-folder", "data"), prepare=mnist(MNIST_IDX),
         metrics={"training_acc": Floats(11, 0, 1), "validation_acc": Floats(11, 0, 1),
                  "final_acc": Floats(1, 0, 1)},
         outputs=frozenset({"outputs/checkpoint"} | {
             f"outputs/-{epoch}.{ext}" for epoch in (0, 5, 10)
             for ext in ("index", "meta", "data-00000-of-00001")})),
    Case("train-in-spark", "training/train-in-spark/train-spark.py", "train-spark.py", prepare=iris_csv,
         metrics={"Regularization Rate": 0.01, "Accuracy": Floats(1, 0, 1)},
         outputs=frozenset({"outputs/iris.model/metadata/part-00000",
                            "outputs/iris.model/metadata/_SUCCESS"}),
         stdout=("Regularization rate is 0.01",)),
    Case("train-on-amlcompute", "training/train-on-amlcompute/train.py", "train.py",
         metrics={"alpha": ALPHAS, "mse": Floats(20, 0)}, outputs=RIDGE_OUTPUTS),
    Case("train-on-local", "training/train-on-local/scripts/train.py", "train.py",
         metrics={"alpha": ALPHAS, "mse": Floats(20, 0)}, outputs=RIDGE_OUTPUTS),
    Case("train-on-remote-vm", "training/train-on-remote-vm/train.py", "train.py", ("--data-folder", "data"),
         prepare=diabetes_npy, metrics={"alpha": ALPHAS, "mse": Floats(20, 0)}, outputs=RIDGE_OUTPUTS),
    Case("fashion-mnist-train",
         "work-with-data/datasets-tutorial/pipeline-with-datasets/keras-mnist-fashion/train.py",
         "train.py", stops=NotCovered("input_datasets")),
    Case("logging-api", "track-and-monitor-experiments/logging-api/logging-api.ipynb", "logging-api.ipynb",
         notebook=True,
         # outside the table ("anything else of azureml.core"): fetching a run by id,
         # listing and downloading its files; the corpus cell after the first gives the notebook
         # its run object back, so get_metrics, tag and get_tags are still checked
         notebook_not_covered={"fetched_run  # corpus: Run(experiment, run_id)": "Run(experiment, run_id)",
                               "fetched_run.get_file_names()": "get_file_names",
                               "fetched_run.download_file(f, dest)": "get_file_names"},
         metrics={
             "Category": "Red",
             "scale factor": 2,
             "Magic Number": 84,
             "Fibonacci": [2 * v for v in (0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89)],
             "Sigmoid": [1 / (1 + math.exp(-i)) for i in range(-10, 10)],
             "Cosine Wave": {"angle": ANGLES, "cos": [math.cos(a) for a in ANGLES]},
             "Sine Wave": {"angle": ANGLES, "sine": [math.sin(a) for a in ANGLES]},
             **{name: Rows(NOTEBOOK_COLUMNS, 1000) for name in ("Accuracy", "Precision", "Recall")},
         },
         images=("Hyperbolic Tangent",),
         uploads={"logging-api/myfile.txt": "logging-api/myfile.txt"},
         # get_tags() after tag("My Favorite Run") and tag("Competition Rank", 1); the docs of
         # Run.tag show a tag without a value as None
         tags={"My Favorite Run": None, "Competition Rank": "1"}),
]
