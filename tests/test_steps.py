"""Steps when several processes log to one run: attached runs continue after the store's last
step, and processes sharing a run (forks, several MLFLOW_RUN_ID processes) never store the
same (key, step) twice."""
import collections
import subprocess
import sys
import textwrap

HEADER = "from azureml.logging import get_azureml_logger\n"


def _steps(store, run_id, key):
    return [m.step for m in store.history(run_id, key)]


def _duplicates(steps):
    return sorted(step for step, n in collections.Counter(steps).items() if n > 1)


def _new_run(store):
    experiment = store.client.get_experiment_by_name(store.experiment)
    experiment_id = (experiment.experiment_id if experiment
                     else store.client.create_experiment(store.experiment))
    return store.client.create_run(experiment_id).info.run_id


def test_processes_attached_to_one_run_never_share_a_step(server_store):
    run_id = _new_run(server_store)
    path = server_store.write_script(HEADER + textwrap.dedent("""
        logger = get_azureml_logger()
        for i in range(500):
            logger.log("acc", i)
    """))
    env = server_store.env(MLFLOW_RUN_ID=run_id)
    procs = [subprocess.Popen([sys.executable, str(path)], cwd=server_store.workdir, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()
    steps = _steps(server_store, run_id, "acc")
    assert len(steps) == 1000
    assert _duplicates(steps) == []
    assert sorted(steps) == list(range(1000))


def test_an_attached_run_continues_after_the_stores_last_step(store):
    run_id = _new_run(store)
    from mlflow.entities import Metric

    store.client.log_batch(run_id, metrics=[Metric("loss", float(i), 1000 + i, i) for i in range(10)])
    store.run_script(HEADER + textwrap.dedent("""
        logger = get_azureml_logger()
        logger.log("loss", [0.5, 0.4])
        logger.log("loss", 0.3)
        logger.log("new", 1)
    """), MLFLOW_RUN_ID=run_id)
    assert _steps(store, run_id, "loss") == list(range(13))
    assert _steps(store, run_id, "new") == [0]


def test_parent_and_forked_child_never_share_a_step(store):
    store.run_script(HEADER + textwrap.dedent("""
        import os
        logger = get_azureml_logger()
        logger.log("m", [0, 1, 2])
        pid = os.fork()
        for i in range(50):
            get_azureml_logger().log("m", i)
        if pid == 0:
            os._exit(0 if get_azureml_logger().flush(120) else 1)
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
    """))
    run = store.only_run()
    steps = _steps(store, run.info.run_id, "m")
    assert len(steps) == 103
    assert _duplicates(steps) == []
    assert sorted(steps) == list(range(103))


def _take_blocks(directory, n):
    from azml_compat._core.steps import StepAllocator

    allocator = StepAllocator(directory, "run-1")
    blocks = []
    for i in range(n):
        count = 1 + i % 3
        (start,) = allocator.take([("loss", count, 0)])
        blocks.append((start, count))
    return blocks


def test_the_allocator_hands_out_disjoint_blocks_across_processes(tmp_path):
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=context) as pool:
        results = list(pool.map(_take_blocks, [str(tmp_path)] * 4, [100] * 4))
    steps = [start + i for blocks in results for start, count in blocks for i in range(count)]
    assert sorted(steps) == list(range(len(steps)))  # no step twice, no gap


def test_floors_and_final_steps_survive_a_replay(tmp_path):
    """Steps written back before sending: reading the journal again gives the same steps."""
    from azml_compat._core.journal import Journal
    from azml_compat._core.steps import SharedSteps

    journal = Journal.create(str(tmp_path / "journal"), "j1", {"tracking_uri": "x"})
    journal.append([(1, "metric", "a", 1.0, 10, 0), (2, "series", "a", [2.0, 3.0], 11, 1),
                    (3, "tag", "t", "v"), (4, "metric", "b", 4.0, 12, 0)])
    shared = SharedSteps(str(tmp_path / "steps"), shared_from=2, floors={"a": 7})
    journal.set_meta(**shared.meta())
    first = shared.apply(journal, journal.pending(0, 10), "run-1")
    assert [r[-1] for r in first if r[1] != "tag"] == [0, 7, 0]  # seq 1 was final already
    again = SharedSteps.from_meta(str(tmp_path / "steps"), journal.meta())
    assert again.final_upto == 4
    assert again.apply(journal, journal.pending(0, 10), "run-1") == first
    journal.close()
