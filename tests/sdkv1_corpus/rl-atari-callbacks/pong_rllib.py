# corpus: how-to-use-azureml/reinforcement-learning/atari-on-distributed-compute/files/pong_rllib.py of Azure/MachineLearningNotebooks at
# f1aff553c475be391acb2e5d4e4094867b5963c0, Copyright (c) Microsoft Corporation, MIT licence
# (../LICENSE-MachineLearningNotebooks.txt). The driver that hands utils/callbacks.py's TrialCallback
# to Ray Tune. Changed so it runs in seconds without Ray (marked "corpus:"): Ray_On_AML and
# run_experiments are stand-ins that call the callback once per training iteration, as Tune does,
# with an episode reward climbing 2 points per iteration until the config's stop criterion, and
# write Tune's progress file under the experiment's local_dir.
# corpus: from ray_on_aml.core import Ray_On_AML
import yaml
# corpus: from ray.tune.tune import run_experiments
from utils import callbacks
import os


class Ray_On_AML:  # corpus: the head node's view
    def getRay(self):
        return self

    def init(self, address):
        pass


def run_experiments(experiment_config, callbacks, verbose):  # corpus: Ray Tune, one trial each
    for name, experiment in experiment_config.items():
        trial_dir = os.path.join(experiment["local_dir"], name, "IMPALA_" + experiment["env"].replace("/", "_"))
        os.makedirs(trial_dir, exist_ok=True)
        with open(os.path.join(trial_dir, "progress.csv"), "w") as progress:
            progress.write("training_iteration,episode_reward_mean,episodes_total\n")
            iteration = 0
            result = {"episode_reward_mean": -21.0}
            while result["episode_reward_mean"] < experiment["stop"]["episode_reward_mean"]:
                iteration += 1
                result = {"training_iteration": iteration,
                          "episode_reward_mean": -21.0 + 2.0 * iteration,
                          "episodes_total": 40 * iteration}
                progress.write("{training_iteration},{episode_reward_mean},{episodes_total}\n".format(**result))
                for callback in callbacks:
                    callback.on_trial_result(iteration, [name], name, result)
    return [name]
import argparse


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument('--config', help='Path to yaml configuration file')
    args = parser.parse_args()

    ray_on_aml = Ray_On_AML()
    ray = ray_on_aml.getRay()
    if ray:  # in the headnode
        ray.init(address="auto")
        print("Configuring run from file: ", args.config)
        experiment_config = None
        with open(args.config, "r") as file:
            experiment_config = yaml.safe_load(file)
        print(f'Config: {experiment_config}')

        # Set local_dir in each experiment configuration to ensure generated logs get picked up
        # by Azure ML
        for experiment in experiment_config.values():
            experiment["local_dir"] = "./logs"

        trials = run_experiments(
            experiment_config,
            callbacks=[callbacks.TrialCallback()],
            verbose=2
        )

    else:
        print("in worker node")
