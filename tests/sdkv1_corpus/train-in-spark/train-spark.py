# corpus: how-to-use-azureml/training/train-in-spark/train-spark.py of Azure/MachineLearningNotebooks at
# f1aff553c475be391acb2e5d4e4094867b5963c0, Copyright (c) Microsoft Corporation, MIT licence
# (../LICENSE-MachineLearningNotebooks.txt). Every azureml import and run.* call is as written there.
# Changed so it runs in seconds without Spark (each change marked "corpus:"): the Spark session,
# data frame and pipeline are pandas and a seeded scikit-learn LogisticRegression over the same
# iris.csv (written by the test from scikit-learn's iris), and model.save writes a folder as
# Spark's does.
# Copyright (c) Microsoft. All rights reserved.
# Licensed under the MIT license.

import numpy as np
# corpus: import pyspark
import os
import urllib
import sys

# corpus: from pyspark.sql.functions import *; from pyspark.ml.classification import *;
# from pyspark.ml.evaluation import *; from pyspark.ml.feature import *;
# from pyspark.sql.types import StructType, StructField, DoubleType, IntegerType, StringType
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from azureml.core.run import Run

# initialize logger
run = Run.get_context()

# start Spark session
# corpus: spark = pyspark.sql.SparkSession.builder.appName('Iris').getOrCreate()

# print runtime versions
print('****************')
print('Python version: {}'.format(sys.version))
print('Spark version: {}'.format('corpus: pandas'))
print('****************')

# load iris.csv into Spark dataframe
data = pd.read_csv("iris.csv")  # corpus: spark.read...schema(schema).load("iris.csv")

print("First 10 rows of Iris dataset:")
print(data.head(10))

# vectorize all numerical columns into a single feature column
feature_cols = data.columns[:-1]
# convert text labels into indices
features, label = data[feature_cols].to_numpy(), data['class'].astype('category').cat.codes.to_numpy()
print("Reading for machine learning")

# change regularization rate and you will likely get a different accuracy.
reg = 0.01
# load regularization rate from argument if present
if len(sys.argv) > 1:
    reg = float(sys.argv[1])

# log regularization rate
run.log("Regularization Rate", reg)

# use Logistic Regression to train on the training set
X_train, X_test, y_train, y_test = train_test_split(features, label, test_size=0.30, random_state=0)
lr = LogisticRegression(C=1 / reg, max_iter=500)  # corpus: pyspark LogisticRegression(regParam=reg)
model = lr.fit(X_train, y_train)

# corpus: model.save(os.path.join("outputs", "iris.model")) writes a folder
os.makedirs(os.path.join("outputs", "iris.model", "metadata"), exist_ok=True)
with open(os.path.join("outputs", "iris.model", "metadata", "part-00000"), "w") as f:
    f.write('{"class": "LogisticRegressionModel", "corpus": "scikit-learn"}\n')
open(os.path.join("outputs", "iris.model", "metadata", "_SUCCESS"), "w").close()

# predict on the test set
prediction = model.predict(X_test)
print("Prediction")
print(prediction[:10])

# evaluate the accuracy of the model using the test set
accuracy = float(np.mean(prediction == y_test))  # corpus: MulticlassClassificationEvaluator

print()
print('#####################################')
print('Regularization rate is {}'.format(reg))
print("Accuracy is {}".format(accuracy))
print('#####################################')
print()

# log accuracy
run.log('Accuracy', accuracy)
