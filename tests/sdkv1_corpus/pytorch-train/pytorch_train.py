# corpus: how-to-use-azureml/ml-frameworks/pytorch/train-hyperparameter-tune-deploy-with-pytorch/pytorch_train.py of Azure/MachineLearningNotebooks at
# f1aff553c475be391acb2e5d4e4094867b5963c0, Copyright (c) Microsoft Corporation, MIT licence
# (../LICENSE-MachineLearningNotebooks.txt). Every azureml import and run.* call is as written there,
# in the same functions and loops. Changed so it runs in seconds without torch, a GPU or a download
# (each change marked "corpus:"): the data set is two seeded numpy classes instead of the fowl
# images; the ResNet fine-tuning is a numpy logistic regression with the same epoch/phase loop;
# np.float (removed from numpy 1.24) is float; torch.save is pickle.
# Copyright (c) 2017, PyTorch contributors
# Modifications copyright (C) Microsoft Corporation
# Licensed under the BSD license
# Adapted from https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html

from __future__ import print_function, division
# corpus: import torch; import torch.nn as nn; import torch.optim as optim;
# from torch.optim import lr_scheduler; from torchvision import datasets, models, transforms
import pickle
import numpy as np
import time
import os
import copy
import argparse

from azureml.core.run import Run
# get the Azure ML run object
run = Run.get_context()


def load_data(data_dir):
    """Load the train/val data."""
    # corpus: torchvision ImageFolder data loaders over data_dir/train and data_dir/val
    dataloaders = {x: np.load(os.path.join(data_dir, x + '.npz')) for x in ['train', 'val']}
    dataset_sizes = {x: len(dataloaders[x]['labels']) for x in ['train', 'val']}
    class_names = ['chickens', 'turkeys']

    return dataloaders, dataset_sizes, class_names


def train_model(model, criterion, optimizer, scheduler, num_epochs, data_dir):
    """Train the model."""

    # load training/validation data
    dataloaders, dataset_sizes, class_names = load_data(data_dir)

    since = time.time()

    best_model_wts = copy.deepcopy(model)
    best_acc = 0.0

    for epoch in range(num_epochs):
        print('Epoch {}/{}'.format(epoch, num_epochs - 1))
        print('-' * 10)

        # Each epoch has a training and validation phase
        for phase in ['train', 'val']:
            inputs, labels = dataloaders[phase]['inputs'], dataloaders[phase]['labels']
            # corpus: forward, loss and (in the train phase) one gradient step, in numpy
            outputs = 1 / (1 + np.exp(-(inputs @ model['w'])))
            preds = (outputs > 0.5).astype(int)
            loss = -np.mean(labels * np.log(outputs + 1e-12) + (1 - labels) * np.log(1 - outputs + 1e-12))
            if phase == 'train':
                model['w'] -= optimizer * inputs.T @ (outputs - labels) / len(labels)

            epoch_loss = loss
            epoch_acc = np.sum(preds == labels) / dataset_sizes[phase]

            print('{} Loss: {:.4f} Acc: {:.4f}'.format(
                phase, epoch_loss, epoch_acc))

            # deep copy the model
            if phase == 'val' and epoch_acc > best_acc:
                best_acc = epoch_acc
                best_model_wts = copy.deepcopy(model)

            # log the best val accuracy to AML run
            run.log('best_val_acc', float(best_acc))  # corpus: np.float(best_acc)

        print()

    time_elapsed = time.time() - since
    print('Training complete in {:.0f}m {:.0f}s'.format(
        time_elapsed // 60, time_elapsed % 60))
    print('Best val Acc: {:4f}'.format(best_acc))

    # load best model weights
    model = best_model_wts
    return model


def fine_tune_model(num_epochs, data_dir, learning_rate, momentum):
    """Load a pretrained model and reset the final fully connected layer."""

    # log the hyperparameter metrics to the AML run
    run.log('lr', float(learning_rate))  # corpus: np.float(learning_rate)
    run.log('momentum', float(momentum))  # corpus: np.float(momentum)

    # corpus: models.resnet18(pretrained=True) with a new 2-class fc layer, SGD and StepLR
    model_ft = {'w': np.zeros(8)}
    criterion = None
    optimizer_ft = learning_rate * 1000
    exp_lr_scheduler = None

    model = train_model(model_ft, criterion, optimizer_ft,
                        exp_lr_scheduler, num_epochs, data_dir)

    return model


def download_data():
    """Download and extract the training data."""
    # corpus: urlretrieve of fowl_data.zip and its extraction, as two seeded classes
    data_dir = 'fowl_data/'
    os.makedirs(data_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    for phase, n in [('train', 244), ('val', 153)]:
        labels = rng.integers(0, 2, n)
        inputs = rng.normal(size=(n, 8)) + labels[:, None]
        np.savez(os.path.join(data_dir, phase + '.npz'), inputs=inputs, labels=labels)
    print('finished extracting')
    return data_dir


def main():
    print("Torch version:", "corpus: numpy")

    # get command-line arguments
    parser = argparse.ArgumentParser()
    parser.add_argument('--num_epochs', type=int, default=25,
                        help='number of epochs to train')
    parser.add_argument('--output_dir', type=str, help='output directory')
    parser.add_argument('--learning_rate', type=float,
                        default=0.001, help='learning rate')
    parser.add_argument('--momentum', type=float, default=0.9, help='momentum')
    args = parser.parse_args()

    data_dir = download_data()
    print("data directory is: " + data_dir)
    model = fine_tune_model(args.num_epochs, data_dir,
                            args.learning_rate, args.momentum)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, 'model.pt'), 'wb') as f:
        pickle.dump(model, f)  # corpus: torch.save(model, os.path.join(args.output_dir, 'model.pt'))


if __name__ == "__main__":
    main()
