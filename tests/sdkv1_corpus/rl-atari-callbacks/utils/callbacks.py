# corpus: how-to-use-azureml/reinforcement-learning/atari-on-distributed-compute/files/utils/callbacks.py of Azure/MachineLearningNotebooks at
# f1aff553c475be391acb2e5d4e4094867b5963c0, Copyright (c) Microsoft Corporation, MIT licence
# (../../LICENSE-MachineLearningNotebooks.txt). Unchanged but for the ray imports (Ray is not
# installed here): Callback is a plain base class, marked "corpus:".
'''RLlib callbacks module:
    Common callback methods to be passed to RLlib trainer.
'''

from azureml.core import Run
# corpus: from ray import tune; from ray.tune import Callback; from ray.air import session


class Callback:
    pass


class TrialCallback(Callback):

    def on_trial_result(self, iteration, trials, trial, result, **info):
        '''Callback on train result to record metrics returned by trainer.
        '''
        run = Run.get_context()
        run.log(
            name='episode_reward_mean',
            value=result["episode_reward_mean"])
        run.log(
            name='episodes_total',
            value=result["episodes_total"])
