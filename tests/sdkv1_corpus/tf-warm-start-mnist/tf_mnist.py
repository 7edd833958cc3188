# corpus: how-to-use-azureml/ml-frameworks/tensorflow/hyperparameter-tune-and-warm-start-with-tensorflow/tf_mnist.py of Azure/MachineLearningNotebooks at
# f1aff553c475be391acb2e5d4e4094867b5963c0, Copyright (c) Microsoft Corporation, MIT licence
# (../LICENSE-MachineLearningNotebooks.txt). Every azureml import and run.* call is as written there.
# Changed so it runs in seconds without TensorFlow (each change marked "corpus:"): TensorFlow's
# network, optimiser and checkpoints are a numpy softmax regression writing files of the
# same names; np.float (removed from numpy 1.24) is float; the data are tiny seeded MNIST-format
# files made by the test; the 3 s pause per epoch is 0.05 s.
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License.

import numpy as np
import argparse
import os
import re
# corpus: import tensorflow as tf (replaced by the numpy lines below)
import time
import glob

from azureml.core import Run
from utils import load_data
# corpus: from tensorflow.keras import Model, layers


# corpus: the TF model, loss, accuracy and optimisation step, as a numpy softmax regression.
class NeuralNet:
    def __init__(self):
        self.w = np.zeros((n_inputs, n_outputs))

    def __call__(self, x, is_training=False):
        logits = x @ self.w
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def _set_inputs(self, x):
        pass  # corpus: the Keras workaround the script calls


def accuracy(y_pred, y_true):
    return np.mean(np.argmax(y_pred, 1) == y_true)


def run_optimization(x, y):
    grad = neural_net(x, is_training=True) - np.eye(n_outputs)[y]
    neural_net.w -= learning_rate * x.T @ grad / len(x)


class Checkpoint:
    """corpus: tf.train.Checkpoint(...).save(prefix) writes prefix-N.index, prefix-N.data-00000-of-00001
    and prefix + 'checkpoint', N counting the saves."""
    saves = 0

    def __init__(self, model, optimizer):
        self.model = model

    def save(self, prefix):
        Checkpoint.saves += 1
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
        np.save(open('{}-{}.index'.format(prefix, Checkpoint.saves), 'wb'), self.model.w.shape)
        np.save(open('{}-{}.data-00000-of-00001'.format(prefix, Checkpoint.saves), 'wb'), self.model.w)
        with open(os.path.join(os.path.dirname(prefix), 'checkpoint'), 'w') as f:
            f.write('model_checkpoint_path: "-{}"\n'.format(Checkpoint.saves))


print("TensorFlow version:", "corpus: numpy")

parser = argparse.ArgumentParser()
parser.add_argument('--data-folder', type=str, dest='data_folder', default='data', help='data folder mounting point')
parser.add_argument('--batch-size', type=int, dest='batch_size', default=128, help='mini batch size for training')
parser.add_argument('--first-layer-neurons', type=int, dest='n_hidden_1', default=128,
                    help='# of neurons in the first layer')
parser.add_argument('--second-layer-neurons', type=int, dest='n_hidden_2', default=128,
                    help='# of neurons in the second layer')
parser.add_argument('--learning-rate', type=float, dest='learning_rate', default=0.01, help='learning rate')
parser.add_argument('--resume-from', type=str, default=None,
                    help='location of the model or checkpoint files from where to resume the training')
args = parser.parse_args()

previous_model_location = args.resume_from
# You can also use environment variable to get the model/checkpoint files location
# previous_model_location = os.path.expandvars(os.getenv("AZUREML_DATAREFERENCE_MODEL_LOCATION", None))

data_folder = args.data_folder
print('Data folder:', data_folder)

# load train and test set into numpy arrays
# note we scale the pixel intensity values to 0-1 (by dividing it with 255.0) so the model can converge faster.
X_train = load_data(glob.glob(os.path.join(data_folder, '**/train-images-idx3-ubyte.gz'),
                              recursive=True)[0], False) / np.float32(255.0)
X_test = load_data(glob.glob(os.path.join(data_folder, '**/t10k-images-idx3-ubyte.gz'),
                             recursive=True)[0], False) / np.float32(255.0)
y_train = load_data(glob.glob(os.path.join(data_folder, '**/train-labels-idx1-ubyte.gz'),
                              recursive=True)[0], True).reshape(-1)
y_test = load_data(glob.glob(os.path.join(data_folder, '**/t10k-labels-idx1-ubyte.gz'),
                             recursive=True)[0], True).reshape(-1)

print(X_train.shape, y_train.shape, X_test.shape, y_test.shape, sep='\n')

training_set_size = X_train.shape[0]

n_inputs = 28 * 28
n_h1 = args.n_hidden_1
n_h2 = args.n_hidden_2
n_outputs = 10
learning_rate = args.learning_rate
n_epochs = 20
batch_size = args.batch_size

# Build neural network model.
neural_net = NeuralNet()

# Stochastic gradient descent optimizer.
optimizer = None  # corpus: tf.optimizers.SGD(learning_rate)

# start an Azure ML run
run = Run.get_context()

if previous_model_location:
    # Restore variables from latest checkpoint.
    checkpoint = Checkpoint(model=neural_net, optimizer=optimizer)  # corpus: tf.train.Checkpoint
    # corpus: tf.train.latest_checkpoint and checkpoint.restore
    checkpoint_file_path = open(os.path.join(previous_model_location, 'checkpoint')).read().split('"')[1]
    neural_net.w = np.load(os.path.join(previous_model_location, checkpoint_file_path + '.data-00000-of-00001'))
    checkpoint_filename = os.path.basename(checkpoint_file_path)
    num_found = re.search(r'\d+', checkpoint_filename)
    if num_found:
        start_epoch = int(num_found.group(0))
        print("Resuming from epoch {}".format(str(start_epoch)))

start_time = time.perf_counter()
for epoch in range(0, n_epochs):

    # randomly shuffle training set
    indices = np.random.permutation(training_set_size)
    X_train = X_train[indices]
    y_train = y_train[indices]

    # batch index
    b_start = 0
    b_end = b_start + batch_size
    for _ in range(training_set_size // batch_size):
        # get a batch
        X_batch, y_batch = X_train[b_start: b_end], y_train[b_start: b_end]

        # update batch index for the next batch
        b_start = b_start + batch_size
        b_end = min(b_start + batch_size, training_set_size)

        # train
        run_optimization(X_batch, y_batch)

    # evaluate training set
    pred = neural_net(X_batch, is_training=False)
    acc_train = accuracy(pred, y_batch)

    # evaluate validation set
    pred = neural_net(X_test, is_training=False)
    acc_val = accuracy(pred, y_test)

    # log accuracies
    run.log('training_acc', float(acc_train))  # corpus: np.float(acc_train)
    run.log('validation_acc', float(acc_val))  # corpus: np.float(acc_val)
    print(epoch, '-- Training accuracy:', acc_train, '\b Validation accuracy:', acc_val)

    # Save checkpoints in the "./outputs" folder so that they are automatically uploaded into run history.
    checkpoint_dir = './outputs/'
    checkpoint = Checkpoint(model=neural_net, optimizer=optimizer)  # corpus: tf.train.Checkpoint

    if epoch % 2 == 0:
        checkpoint.save(checkpoint_dir)
    time.sleep(0.05)  # corpus: time.sleep(3), 20 epochs x 3 s

run.log('final_acc', float(acc_val))  # corpus: np.float(acc_val)
os.makedirs('./outputs/model', exist_ok=True)

# files saved in the "./outputs" folder are automatically uploaded into run history
# this is workaround for https://github.com/tensorflow/tensorflow/issues/33913 and will be fixed once we move to >tf2.1
neural_net._set_inputs(X_train)
# corpus: tf.saved_model.save(neural_net, './outputs/model/') wrote these files
os.makedirs('./outputs/model/variables', exist_ok=True)
open('./outputs/model/saved_model.pb', 'wb').write(neural_net.w.tobytes()[:64])
np.save(open('./outputs/model/variables/variables.data-00000-of-00001', 'wb'), neural_net.w)
np.save(open('./outputs/model/variables/variables.index', 'wb'), neural_net.w.shape)

stop_time = time.perf_counter()
training_time = (stop_time - start_time) * 1000
print("Total time in milliseconds for training: {}".format(str(training_time)))
