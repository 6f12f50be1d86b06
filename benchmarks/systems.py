"""The systems the benchmarks compare, each written the way its best users write it.

Shared by compare.py (which runs each in its own fresh process) and the pytest-benchmark
files. Every system trains the workload of workload.py: 784-256-128-10, ReLU, the mean
softmax cross-entropy of the logits, Adam as PyTorch defines it (lr 1e-3), Glorot-uniform
weights and zero biases, and each epoch visits the rows in a fresh random order, gathering
each minibatch's rows (the last batch holds the remainder), as pydfn's train_epoch does.

- pydfn: ``MLP.train_epoch`` (one C++ call per epoch).
- numpy: a lean loop: one ``@`` per product written into a view of one flat gradient
  buffer, bias and ReLU in place, Adam in place over one flat parameter buffer.
  Not ``pydfn.reference``: that is the tests' oracle (float64 sums, penalty terms), not a baseline.
- torch: eager PyTorch, ``nn.Sequential`` + ``F.cross_entropy`` + ``torch.optim.Adam(fused=True)``
  (fused measured 10-25% faster per epoch than foreach=True here; compare.py --torch-adam foreach
  measures the other).
- jax: the whole epoch is one ``jax.jit`` call: ``lax.scan`` over the full batches, then
  the remainder batch, hand-written Adam, state donated to the call.
- The bf16 modes, each peer's own (products of bf16-rounded inputs with float32 sums; float32
  weights and optimizer): torch-bf16 runs the same loop under
  ``torch.autocast("cpu", dtype=torch.bfloat16)``, as its users do: its ``Linear`` layers
  also return bf16, so the layer outputs, activations, logits and the gradients between
  layers are stored in bf16 (pydfn-bf16 keeps each product's output in float32); fused Adam
  on the float32 weights. jax-bf16 is like pydfn-bf16: each product a ``jnp.dot`` of bf16
  operands with ``preferred_element_type=float32``, the backward products too (a
  ``custom_vjp``: JAX's own rule would multiply the float32 gradients unrounded).

``build_epoch(name, x, y, batch)`` returns a callable that trains one epoch and returns
its mean loss; ``build_predict(name, x, batch)`` one that returns the logits of x.
"""

from __future__ import annotations

import importlib.util
import inspect
import time
from typing import Callable

import numpy as np

from workload import SIZES

LR, BETA1, BETA2, EPS = 1e-3, 0.9, 0.999, 1e-8
TORCH_ADAM = "fused"  # or "foreach": compare.py --torch-adam sets it


def glorot(sizes=SIZES, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Glorot-uniform W (in, out) float32 and zero b (out,) of each layer."""
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (n_in + n_out))
        layers.append((rng.uniform(-limit, limit, (n_in, n_out)).astype(np.float32), np.zeros(n_out, np.float32)))
    return layers


# --- the lean NumPy loop ----------------------------------------------------------

class LeanMLP:
    """The network as a lean NumPy program: one flat buffer each for the parameters, the
    gradients and Adam's two moments, with (W, b) views into them; nothing allocated
    per step but the products' outputs that NumPy itself allocates."""

    def __init__(self, sizes=SIZES, seed: int = 0):
        layers = glorot(sizes, seed)
        n = sum(w.size + b.size for w, b in layers)
        self.params, self.grads = np.empty(n, np.float32), np.zeros(n, np.float32)
        self.m, self.v, self.tmp = np.zeros(n, np.float32), np.zeros(n, np.float32), np.empty(n, np.float32)
        self.W, self.b, self.dW, self.db = [], [], [], []
        at = 0
        for w, b in layers:
            for src, views, dviews in ((w, self.W, self.dW), (b, self.b, self.db)):
                self.params[at:at + src.size] = src.ravel()
                views.append(self.params[at:at + src.size].reshape(src.shape))
                dviews.append(self.grads[at:at + src.size].reshape(src.shape))
                at += src.size
        self.t = 0

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """The input and each layer's output (ReLU'd but the last: the logits)."""
        acts = [x]
        for l, (w, b) in enumerate(zip(self.W, self.b)):
            h = acts[-1] @ w
            h += b
            if l < len(self.W) - 1:
                np.maximum(h, 0, out=h)
            acts.append(h)
        return acts

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One Adam step on the minibatch (x, y); returns its mean loss."""
        acts = self.forward(x)
        dz = acts[-1]
        loss = softmax_xent_grad(dz, y)  # dz now holds d loss / d logits
        for l in range(len(self.W) - 1, -1, -1):
            np.matmul(acts[l].T, dz, out=self.dW[l])
            np.sum(dz, axis=0, out=self.db[l])
            if l > 0:
                dx = dz @ self.W[l].T
                dx *= acts[l] > 0  # the ReLU mask
                dz = dx
        self.t += 1
        adam_update(self.params, self.m, self.v, self.grads, self.tmp, self.t)
        return loss

    def epoch(self, x: np.ndarray, y: np.ndarray, batch: int, order: np.ndarray) -> float:
        total = 0.0
        for start in range(0, len(x), batch):
            rows = order[start:start + batch]
            total += self.step(x[rows], y[rows]) * len(rows)
        return total / len(x)


def softmax_xent_grad(z: np.ndarray, y: np.ndarray) -> float:
    """Mean softmax cross-entropy of logits z (B, C); z is overwritten with its gradient."""
    rows = np.arange(len(z))
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    loss = -float(np.log(z[rows, y]).mean())
    z[rows, y] -= 1
    z /= len(z)
    return loss


def adam_update(p, m, v, g, tmp, t: int) -> None:
    """PyTorch's Adam, in place over flat float32 buffers (tmp: scratch of the same size)."""
    m *= BETA1
    np.multiply(g, 1 - BETA1, out=tmp)
    m += tmp
    v *= BETA2
    np.multiply(g, g, out=tmp)
    tmp *= 1 - BETA2
    v += tmp
    np.sqrt(v, out=tmp)
    tmp *= 1 / np.sqrt(1 - BETA2 ** t)
    tmp += EPS
    np.divide(m, tmp, out=tmp)
    tmp *= LR / (1 - BETA1 ** t)
    p -= tmp


def numpy_epoch(x, y, batch):
    model, rng = LeanMLP(), np.random.default_rng(1)
    return lambda: model.epoch(x, y, batch, rng.permutation(len(x)))


def numpy_predict(x, batch):
    model = LeanMLP()
    return lambda: np.concatenate([model.forward(x[s:s + batch])[-1] for s in range(0, len(x), batch)])


def call_samples(predict: Callable[[], object], calls: int, samples: int) -> list[float]:
    """Seconds per call: each sample the mean of a run of ``calls`` calls after as many untimed
    ones (a call timed cold ran up to 2.5x slower)."""
    out = []
    for _ in range(samples):
        for _ in range(calls):
            predict()
        start = time.perf_counter()
        for _ in range(calls):
            predict()
        out.append((time.perf_counter() - start) / calls)
    return out


# --- pydfn ------------------------------------------------------------------------

def pydfn_model(precision: str):
    import pydfn
    if precision == "fp32":
        return pydfn.MLP(SIZES, seed=0)
    return pydfn.MLP(SIZES, seed=0, precision=precision)


def pydfn_epoch(x, y, batch, precision="fp32"):
    import pydfn
    model, adam = pydfn_model(precision), pydfn.Adam()
    return lambda: model.train_epoch(x, y, adam, batch_size=batch, check_finite=False)


def pydfn_predict(x, batch, precision="fp32"):
    model = pydfn_model(precision)
    return lambda: model.predict_logits(x, batch_size=batch)


def pydfn_has_precision() -> str | None:
    import pydfn
    if "precision" not in inspect.signature(pydfn.MLP).parameters:
        return "this pydfn's MLP has no precision= yet"
    return None


# --- PyTorch eager ----------------------------------------------------------------

def torch_net():
    import torch
    layers = []
    for l, (w, b) in enumerate(glorot()):
        lin = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T))  # torch stores W as (out, in)
            lin.bias.zero_()
        layers += [lin] if l == len(SIZES) - 2 else [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)


def torch_autocast(precision: str):
    """The context the torch loops run in: nothing for fp32, bf16 autocast for bf16."""
    import contextlib

    import torch
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def torch_epoch(x, y, batch, precision="fp32"):
    import torch
    net = torch_net()
    opt = torch.optim.Adam(net.parameters(), lr=LR, **{TORCH_ADAM: True})
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    rng = np.random.default_rng(1)

    def epoch():
        order = torch.from_numpy(rng.permutation(len(x)))
        total = torch.zeros(())
        for start in range(0, len(x), batch):
            rows = order[start:start + batch]
            with torch_autocast(precision):
                loss = torch.nn.functional.cross_entropy(net(xt[rows]), yt[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(rows)
        return float(total) / len(x)
    return epoch


def torch_predict(x, batch, precision="fp32"):
    import torch
    net, xt = torch_net(), torch.from_numpy(x)

    def predict():
        with torch.inference_mode(), torch_autocast(precision):
            return torch.cat([net(xt[s:s + batch]).float() for s in range(0, len(xt), batch)])
    return predict


# --- JAX, the whole epoch under one jit -------------------------------------------------

def bf16_matmul():
    """a @ b from bf16-rounded a and b with float32 sums, forward and backward (the gradients
    are rounded to bf16 before their products too, as pydfn-bf16 and autocast do)."""
    import jax
    import jax.numpy as jnp

    def dot(a, b):
        return jnp.dot(a.astype(jnp.bfloat16), b.astype(jnp.bfloat16), preferred_element_type=jnp.float32)

    @jax.custom_vjp
    def matmul(a, b):
        return dot(a, b)

    def backward(operands, g):
        a, b = operands
        return dot(g, b.T), dot(a.T, g)
    matmul.defvjp(lambda a, b: (dot(a, b), (a, b)), backward)
    return matmul


def jax_logits(params, x, precision="fp32"):
    import jax
    matmul = bf16_matmul() if precision == "bf16" else (lambda a, b: a @ b)
    for w, b in params[:-1]:
        x = jax.nn.relu(matmul(x, w) + b)
    w, b = params[-1]
    return matmul(x, w) + b


def jax_epoch(x, y, batch, precision="fp32"):
    import jax
    import jax.numpy as jnp
    tree_map = jax.tree_util.tree_map
    n, full = len(x), len(x) // batch

    def loss_fn(params, xb, yb):
        z = jax_logits(params, xb, precision)
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(z, yb[:, None], axis=1)[:, 0])

    def step(state, rows, xs, ys):
        params, m, v, t = state
        loss, g = jax.value_and_grad(loss_fn)(params, xs[rows], ys[rows])
        t = t + 1
        m = tree_map(lambda m, g: BETA1 * m + (1 - BETA1) * g, m, g)
        v = tree_map(lambda v, g: BETA2 * v + (1 - BETA2) * g * g, v, g)
        step_size, root = LR / (1 - BETA1 ** t), jnp.sqrt(1 - BETA2 ** t)
        params = tree_map(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) / root + EPS), params, m, v)
        return (params, m, v, t), loss * len(rows)

    def epoch(state, xs, ys, order):
        state, losses = jax.lax.scan(lambda s, rows: step(s, rows, xs, ys), state,
                                     order[:full * batch].reshape(full, batch))
        total = losses.sum()
        if full * batch < n:  # the remainder batch, a second shape inside the same program
            state, loss = step(state, order[full * batch:], xs, ys)
            total += loss
        return state, total / n

    epoch_jit = jax.jit(epoch, donate_argnums=0)
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in glorot()]
    zeros = tree_map(jnp.zeros_like, params)
    state = [(params, zeros, tree_map(jnp.zeros_like, params), jnp.zeros((), jnp.float32))]
    xs, ys = jnp.asarray(x), jnp.asarray(y.astype(np.int32))
    rng = np.random.default_rng(1)

    def run():
        state[0], loss = epoch_jit(state[0], xs, ys, jnp.asarray(rng.permutation(n).astype(np.int32)))
        return float(loss.block_until_ready())
    return run


def jax_predict(x, batch, precision="fp32"):
    import jax
    import jax.numpy as jnp
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in glorot()]
    forward = jax.jit(lambda params, x: jax_logits(params, x, precision))
    xs = jnp.asarray(x)
    return lambda: jnp.concatenate([forward(params, xs[s:s + batch])
                                    for s in range(0, len(x), batch)]).block_until_ready()


# --- the table of systems --------------------------------------------------------------

def _module_missing(module: str) -> Callable[[], str | None]:
    return lambda: None if importlib.util.find_spec(module) else f"{module} is not installed"


# name: (epoch builder, predict builder, why it cannot run here or None)
SYSTEMS = {
    "pydfn": (pydfn_epoch, pydfn_predict, lambda: None),
    "pydfn-bf16": (lambda x, y, b: pydfn_epoch(x, y, b, "bf16"), lambda x, b: pydfn_predict(x, b, "bf16"),
                   pydfn_has_precision),
    "numpy": (numpy_epoch, numpy_predict, lambda: None),
    "torch": (torch_epoch, torch_predict, _module_missing("torch")),
    "torch-bf16": (lambda x, y, b: torch_epoch(x, y, b, "bf16"), lambda x, b: torch_predict(x, b, "bf16"),
                   _module_missing("torch")),
    "jax": (jax_epoch, jax_predict, _module_missing("jax")),
    "jax-bf16": (lambda x, y, b: jax_epoch(x, y, b, "bf16"), lambda x, b: jax_predict(x, b, "bf16"),
                 _module_missing("jax")),
}


def unavailable(name: str) -> str | None:
    """Why system `name` cannot run here, or None."""
    return SYSTEMS[name][2]()


def build_epoch(name: str, x, y, batch: int) -> Callable[[], float]:
    return SYSTEMS[name][0](x, y, batch)


def build_predict(name: str, x, batch: int) -> Callable[[], object]:
    return SYSTEMS[name][1](x, batch)
