"""Threads: the count, fork safety and oversubscription never change results or hang."""

import json
import os

import numpy as np
import pytest

from _subprocess import run_python

import pydfn


TRAIN = """
import numpy as np, pydfn
x = np.random.default_rng(0).random((600, 50), dtype=np.float32)
y = np.random.default_rng(1).integers(0, 10, 600)
def train():
    model = pydfn.MLP([50, 40, 10], seed=1)
    model.train_epoch(x, y, pydfn.Adam(), batch_size=32, seed=2)
    return np.concatenate([w.ravel() for w in model.get_weights()])
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_trains_instead_of_hanging():
    # GNU OpenMP's thread pool does not survive fork(): a child forked after the
    # parent trained runs single-threaded, with the same results.
    out = run_python(TRAIN + """
import json
import os
parent = train()
pid = os.fork()
if pid == 0:
    same = np.array_equal(train(), parent)
    os._exit(0 if same and pydfn.get_num_threads() == 1 else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), pydfn.get_num_threads())
""", timeout=60)
    child_code, parent_threads = out.split()
    assert child_code == "0" and int(parent_threads) >= 1


def test_omp_num_threads_is_respected_and_set_num_threads_overrides_it():
    out = run_python("import pydfn; a = pydfn.get_num_threads(); pydfn.set_num_threads(3); "
                     "print(a, pydfn.get_num_threads())", OMP_NUM_THREADS="1")
    assert out.split() == ["1", "3"] or not pydfn._core.has_openmp()


def test_more_threads_than_cores_gives_the_same_weights(threads):
    x = np.random.default_rng(0).random((300, 30), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 5, 300)
    results = []
    for n in (1, 8):
        pydfn.set_num_threads(n)
        model = pydfn.MLP([30, 20, 5], seed=0)
        model.train_epoch(x, y, pydfn.Adam(), batch_size=16, seed=0)
        results.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*results))


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("loss", ["softmax_xent", "mse"])
def test_every_layer_path_gives_the_same_bits_for_any_thread_count(threads, activation, loss):
    # Each path places its own barriers (tanh/sigmoid passes, dropout masks, the
    # penalty, a regression loss): a missing one shows up as threads disagreeing.
    rng = np.random.default_rng(0)
    x = rng.random((500, 40), dtype=np.float32)
    y = rng.integers(0, 7, 500) if loss == "softmax_xent" else rng.random((500, 3), dtype=np.float32)
    results = []
    for n in (1, 2, 3):
        pydfn.set_num_threads(n)
        model = pydfn.MLP([40, 33, 17, 7 if loss == "softmax_xent" else 3], seed=1,
                          activation=activation, loss=loss, dropout=0.3, l2=1e-3)
        for _ in range(2):
            model.train_epoch(x, y, pydfn.Adam(), batch_size=37, seed=2)
        results.append(model.get_weights() + [model.predict_logits(x)])
    for other in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0], other))


@pytest.mark.parametrize("n, error, match", [
    (0, ValueError, "threads must be >= 1, got 0"),
    (2**40, ValueError, "threads must be <= 1024, got 1099511627776"),
    (2.0, TypeError, "threads must be an integer, got float"),
    (True, TypeError, "threads must be an integer, got bool"),
])
def test_bad_thread_counts_are_refused_and_change_nothing(n, error, match):
    before = pydfn.get_num_threads()
    with pytest.raises(error, match=match):
        pydfn.set_num_threads(n)
    assert pydfn.get_num_threads() == before


OPENMP_ALONGSIDE = """
import ctypes, ctypes.util, json
import numpy as np, pydfn
from pydfn import _core
# The libgomp pydfn's core uses (already loaded): what torch.set_num_threads and
# threadpoolctl call.
gomp = ctypes.CDLL("libgomp.so.1")
x = np.random.default_rng(0).random((64, 20), dtype=np.float32)
y = np.random.default_rng(1).integers(0, 3, 64)
def train():
    pydfn.MLP([20, 8, 3], seed=0).train_epoch(x, y, pydfn.Adam(), batch_size=16, seed=0)
pydfn.set_num_threads(2)
gomp.omp_set_num_threads(1)
train()
pydfn_after_openmp = pydfn.get_num_threads()
gomp.omp_set_num_threads(3)
pydfn.set_num_threads(1)
train()
print(json.dumps({"pydfn": pydfn_after_openmp, "openmp": gomp.omp_get_max_threads()}))
"""


def test_pydfns_thread_count_and_openmps_do_not_change_each_other():
    if not pydfn._core.has_openmp():
        pytest.skip("built without OpenMP")
    assert json.loads(run_python(OPENMP_ALONGSIDE)) == {"pydfn": 2, "openmp": 3}


ENVIRONMENT = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import numpy as np, pydfn
x = np.random.default_rng(0).random((64, 20), dtype=np.float32)
y = np.random.default_rng(1).integers(0, 3, 64)
pydfn.MLP([20, 8, 3], seed=0).train_epoch(x, y, pydfn.Adam(), batch_size=16, seed=0)
print(json.dumps({"threads": pydfn.get_num_threads(),
                  "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}))
"""


@pytest.mark.parametrize("value, problem, threads", [
    ("garbage", "OMP_NUM_THREADS='garbage' is not a positive integer", "cores"),
    ("0", "OMP_NUM_THREADS='0' is not a positive integer", "cores"),
    ("100000", "OMP_NUM_THREADS='100000' is more than pydfn's default allows (4 per core", "cap"),
    ("65000", "OMP_NUM_THREADS='65000' is more than pydfn's default allows (4 per core", "cap"),
    # beyond what OpenMP reads: it falls back to the cores
    ("99999999999999999999", "is more than pydfn's default allows", "cores"),
    ("3", None, 3),
    ("3,1", None, 3),
])
def test_omp_num_threads_is_validated_and_capped_with_a_warning(value, problem, threads):
    # 100000 segfaulted in GOMP_parallel, 65000 exited ("Thread creation failed").
    if not pydfn._core.has_openmp():
        pytest.skip("built without OpenMP")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = {"cores": cores, "cap": min(4 * cores, 1024)}.get(threads, threads)
    out = json.loads(run_python(ENVIRONMENT, timeout=60, OMP_NUM_THREADS=value))
    assert out["threads"] == threads
    if problem is None:
        assert out["warnings"] == []
    else:
        [warning] = out["warnings"]
        assert warning.startswith("RuntimeWarning: ") and problem in warning
        assert warning.endswith(f"pydfn uses {threads} threads") or f"pydfn uses {threads} threads;" in warning


NO_THREADS = """
import json, resource
import numpy as np, pydfn
x = np.random.default_rng(0).random((300, 20), dtype=np.float32)
y = np.random.default_rng(1).integers(0, 3, 300)
def train():
    model = pydfn.MLP([20, 8, 3], seed=0)
    model.train_epoch(x, y, pydfn.Adam(), batch_size=16, seed=0)
    return [w.tolist() for w in model.get_weights()]
pydfn.set_num_threads(2)
weights = train()
print(json.dumps({"threads": pydfn.get_num_threads(), "weights": weights}))
"""


def without_new_threads():
    # Every new thread's stack would be 1 TiB (glibc sizes it by RLIMIT_STACK): no
    # thread can be created, as under a low `ulimit -u`, which root ignores.
    import resource
    resource.setrlimit(resource.RLIMIT_STACK, (1 << 40, resource.getrlimit(resource.RLIMIT_STACK)[1]))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX resource limits")
def test_when_no_thread_can_start_pydfn_runs_on_one_instead_of_exiting():
    # GNU OpenMP exits the process (code 1, "Thread creation failed") when it cannot
    # create a thread; pydfn starts its threads only once it knows they can start.
    if not pydfn._core.has_openmp():
        pytest.skip("built without OpenMP")
    import resource
    import subprocess
    import sys
    import tempfile
    if resource.getrlimit(resource.RLIMIT_STACK)[1] not in (resource.RLIM_INFINITY,) \
            and resource.getrlimit(resource.RLIMIT_STACK)[1] < (1 << 40):
        pytest.skip("the hard stack limit is too low to make thread creation fail")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")  # NumPy's BLAS: no threads
    proc = subprocess.run([sys.executable, "-c", NO_THREADS], capture_output=True, text=True, timeout=120,
                          env=env, cwd=tempfile.gettempdir(), preexec_fn=without_new_threads)
    assert proc.returncode == 0, proc.stderr
    limited = json.loads(proc.stdout)
    normal = json.loads(run_python(NO_THREADS, timeout=120))
    assert limited["threads"] == 1 and normal["threads"] == 2
    assert limited["weights"] == normal["weights"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_child_forked_while_another_thread_trains_can_use_the_model():
    # Issue 19 item 7: the model's "in use" flag was copied into the child set, and no thread
    # there would ever clear it: every call raised "already in use by another thread".
    out = run_python("""
import os, threading
import numpy as np
import pydfn
x = np.random.default_rng(0).random((20000, 200), dtype=np.float32)
y = np.random.default_rng(1).integers(0, 10, 20000).astype(np.int32)
model, idle = pydfn.MLP([200, 256, 10], seed=0), pydfn.MLP([200, 4, 10], seed=1)
started = threading.Event()
class Started(pydfn.callbacks.Callback):
    def on_epoch_end(self, epoch, logs):
        started.set()
worker = threading.Thread(target=lambda: model.fit(x, y, pydfn.Adam(), epochs=50, verbose=0,
                                                   callbacks=[Started()]))
worker.start()
# Fork while the worker trains: it spends nearly all of each epoch inside the core, holding
# the model (a Python call into the model here could make the worker's next call wait or fail).
started.wait()
pid = os.fork()
if pid == 0:
    try:
        model.predict(x[:5])
        model.train_step(x[:64], y[:64], pydfn.Adam())
        idle.predict(x[:5])
        os._exit(0)
    except BaseException as exc:
        print("child:", type(exc).__name__, exc, flush=True)
        os._exit(3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), flush=True)
os._exit(0)  # no need to wait for the worker's 50 epochs
""", timeout=120)
    assert out.split()[-1] == "0", out


@pytest.mark.skipif(not pydfn._core.has_openmp(), reason="a build without OpenMP has no barriers")
def test_barrier_accounting_counts_every_wait(threads):
    # profile_epoch.py --kernels reads these counts: each barrier is one wait per thread,
    # and a ReLU fp32 step has 2·layers + 2 (the gather, each layer's forward, the loss,
    # each layer's backward).
    testing = pydfn._core.testing
    pydfn.set_num_threads(2)
    testing.set_barrier_accounting(True)
    testing.barriers(50)
    waits, seconds = testing.barrier_waits()
    assert waits == 2 * 50 and seconds > 0

    x = np.random.default_rng(0).random((96, 20), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, 96)
    model = pydfn.MLP([20, 16, 12, 10], seed=0)
    model.train_epoch(x, y, pydfn.Adam(), batch_size=32)  # buffers sized: the next call only trains
    testing.set_barrier_accounting(True)  # zeroes the totals
    model.train_epoch(x, y, pydfn.Adam(), batch_size=32)
    testing.set_barrier_accounting(False)
    waits, _ = testing.barrier_waits()
    assert waits == 2 * 3 * (2 * 3 + 2)  # threads x batches x barriers per step
    model.train_epoch(x, y, pydfn.Adam(), batch_size=32)
    assert testing.barrier_waits()[0] == waits  # off: nothing more counted


@pytest.mark.skipif(not pydfn._core.has_openmp(), reason="a build without OpenMP starts no threads")
@pytest.mark.parametrize("env,threads", [({"OMP_STACKSIZE": "999999999G"}, 1), ({"GOMP_STACKSIZE": "99999999999"}, 1),
                                         ({"OMP_STACKSIZE": "16M"}, 2), ({"OMP_STACKSIZE": "garbage"}, 2),
                                         ({"OMP_STACKSIZE": "garbage", "GOMP_STACKSIZE": "999999999G"}, 1),
                                         ({"OMP_STACKSIZE": "1B"}, 2), ({"OMP_STACKSIZE": "99999999999999999999G"}, 2)])
def test_a_stack_size_no_thread_can_have_runs_on_one_thread(env, threads):
    # GNU OpenMP exits the whole process when it cannot start a thread of the stack
    # OMP_STACKSIZE asks for; pydfn probes with that stack first and runs with what starts.
    # As GNU OpenMP, it reads GOMP_STACKSIZE when OMP_STACKSIZE is no size (that exited the
    # process), and keeps the default stack for a size pthreads refuses or that overflows (that
    # ran on one thread).
    out = run_python(TRAIN + """
import pydfn
pydfn.set_num_threads(2)
train()
print(pydfn.get_num_threads())
""", **env)
    assert int(out.split()[-1]) == threads
