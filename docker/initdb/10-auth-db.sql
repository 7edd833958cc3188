-- Run once by the postgres image on an empty volume: the basic-auth app's user store.
CREATE DATABASE mlflow_auth;
