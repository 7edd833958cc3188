# corpus: how-to-use-azureml/ml-frameworks/tensorflow/train-tensorflow-resume-training/tf_mnist_with_checkpoint.py of Azure/MachineLearningNotebooks at
# f1aff553c475be391acb2e5d4e4094867b5963c0, Copyright (c) Microsoft Corporation, MIT licence
# (../LICENSE-MachineLearningNotebooks.txt). Every azureml import and run.* call is as written there.
# Changed so it runs in seconds without TensorFlow (each change marked "corpus:"): the TF 1 graph,
# session and Saver are a numpy softmax regression whose saver writes files of the names
# tf.train.Saver wrote; np.float (removed from numpy 1.24) is float; the data are tiny seeded
# MNIST-format files made by the test.
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License.

import numpy as np
import argparse
import os
import re
# corpus: import tensorflow.compat.v1 as tf (replaced by the numpy lines below)
import glob

from azureml.core import Run
from utils import load_data

print("TensorFlow version:", "corpus: numpy")

parser = argparse.ArgumentParser()
parser.add_argument('--data-folder', type=str, dest='data_folder', help='data folder mounting point')

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
                              recursive=True)[0], False) / 255.0
X_test = load_data(glob.glob(os.path.join(data_folder, '**/t10k-images-idx3-ubyte.gz'),
                             recursive=True)[0], False) / 255.0
y_train = load_data(glob.glob(os.path.join(data_folder, '**/train-labels-idx1-ubyte.gz'),
                              recursive=True)[0], True).reshape(-1)
y_test = load_data(glob.glob(os.path.join(data_folder, '**/t10k-labels-idx1-ubyte.gz'),
                             recursive=True)[0], True).reshape(-1)

print(X_train.shape, y_train.shape, X_test.shape, y_test.shape, sep='\n')
training_set_size = X_train.shape[0]
# corpus: tf.disable_v2_behavior()

n_inputs = 28 * 28
n_h1 = 100
n_h2 = 100
n_outputs = 10
learning_rate = 0.01
n_epochs = 20
batch_size = 50


# corpus: the graph (network, train, eval name scopes) and tf.train.Saver, in numpy.
class Graph:
    def __init__(self):
        self.w = np.zeros((n_inputs, n_outputs))

    def output(self, x):
        return x @ self.w

    def train_op(self, x, y):
        logits = self.output(x)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        self.w -= learning_rate * x.T @ (e / e.sum(axis=1, keepdims=True) - np.eye(n_outputs)[y]) / len(x)

    def acc_op(self, x, y):
        return np.float32(np.mean(np.argmax(self.output(x), 1) == y))


class Saver:
    """tf.train.Saver().save(sess, prefix, global_step=n) writes prefix-n.index, prefix-n.meta,
    prefix-n.data-00000-of-00001 and the 'checkpoint' file next to them."""

    def save(self, sess, prefix, global_step):
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
        np.save(open('{}-{}.data-00000-of-00001'.format(prefix, global_step), 'wb'), sess.w)
        np.save(open('{}-{}.index'.format(prefix, global_step), 'wb'), sess.w.shape)
        np.save(open('{}-{}.meta'.format(prefix, global_step), 'wb'), [n_inputs, n_outputs])
        with open(os.path.join(os.path.dirname(prefix), 'checkpoint'), 'w') as f:
            f.write('model_checkpoint_path: "-{}"\n'.format(global_step))

    def restore(self, sess, checkpoint_file_path):
        sess.w = np.load(checkpoint_file_path + '.data-00000-of-00001')


def latest_checkpoint(folder):
    return os.path.join(folder, open(os.path.join(folder, 'checkpoint')).read().split('"')[1])


saver = Saver()

# start an Azure ML run
run = Run.get_context()

if True:  # corpus: with tf.Session() as sess:
    sess = Graph()
    start_epoch = 0
    if previous_model_location:
        checkpoint_file_path = latest_checkpoint(previous_model_location)  # corpus: tf.train.latest_checkpoint
        saver.restore(sess, checkpoint_file_path)
        checkpoint_filename = os.path.basename(checkpoint_file_path)
        num_found = re.search(r'\d+', checkpoint_filename)
        if num_found:
            start_epoch = int(num_found.group(0))
            print("Resuming from epoch {}".format(str(start_epoch)))
    else:
        pass  # corpus: init.run()

    for epoch in range(start_epoch, n_epochs):

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
            sess.train_op(X_batch, y_batch)  # corpus: sess.run(train_op, ...)
        # evaluate training set
        acc_train = sess.acc_op(X_batch, y_batch)  # corpus: acc_op.eval(...)
        # evaluate validation set
        acc_val = sess.acc_op(X_test, y_test)  # corpus: acc_op.eval(...)

        # log accuracies
        run.log('training_acc', float(acc_train))  # corpus: np.float(acc_train)
        run.log('validation_acc', float(acc_val))  # corpus: np.float(acc_val)
        print(epoch, '-- Training accuracy:', acc_train, '\b Validation accuracy:', acc_val)
        y_hat = np.argmax(sess.output(X_test), axis=1)  # corpus: output.eval(...)

        if epoch % 5 == 0:
            saver.save(sess, './outputs/', global_step=epoch)

        # saving only half of the model and resuming again from same epoch
        if not previous_model_location and epoch == 10:
            break

    run.log('final_acc', float(acc_val))  # corpus: np.float(acc_val)
