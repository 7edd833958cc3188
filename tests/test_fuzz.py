"""Fuzzing log(): every call either is accepted (and then the store accepts it too) or raises a
TypeError/ValueError that says which metric; never anything else."""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**1100), max_value=2**1100),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=50),
    st.binary(max_size=20), st.complex_numbers(),
)
arrays = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.uint8, np.bool_, np.dtype("U3")]),
    shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4),
)
values = st.one_of(
    scalars, arrays,
    st.lists(scalars, max_size=6), st.tuples(scalars, scalars),
    st.lists(st.lists(st.integers(), max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=10), scalars, max_size=4),
    st.text(min_size=7990, max_size=8100),
)
names = st.one_of(st.text(max_size=300), st.sampled_from(["", " ", "..", "a/../b", "x" * 251]),
                  st.integers(), st.none())


def test_log_never_raises_an_unexplained_exception(sqlite_store, azml_home):
    from azml_compat._config import Settings
    from azml_compat._workbench.logger import AzureMLLogger
    from azml_compat._core.session import Session, run_spec

    cfg = Settings(cwd=str(sqlite_store.workdir), tracking_uri=sqlite_store.uri,
                   experiment_name=sqlite_store.experiment, journal_dir=str(azml_home / "journal"))
    session = Session(cfg, run_spec(cfg))
    logger = AzureMLLogger(session)
    accepted = []

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(name=names, value=values)
    def call(name, value):
        try:
            accepted.append((name, logger.log(name, value)))
        except (TypeError, ValueError) as exc:
            message = str(exc)
            assert "metric name" in message or repr(name) in message, message
    call()

    assert logger.flush(300)
    for _name, handle in accepted:
        handle.wait(0)  # raises if the store refused something we accepted
    assert len(accepted) > 10  # the strategies do reach the accepting paths
    run = sqlite_store.client.get_run(logger.run_id)
    assert run.data.metrics and all(isinstance(v, float) for v in run.data.metrics.values())
    session.close()
