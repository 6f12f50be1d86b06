"""The ``pydfn`` command: train, evaluate, predict, export, info.

``pydfn train`` with its defaults is the tutorial: Fashion-MNIST, 10% held out for
validation (seed 2), 784-256-128-10 ReLU, Adam lr 0.001, batch 64, 20 epochs.
Mistakes (bad flags, missing data, unreadable files) end with one ``error:``
message and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

import numpy as np

from . import _core, datasets, metrics
from ._npz import check_npy
from ._validation import check_network_size
from .augment import Augment
from .callbacks import EarlyStopping, ReduceLROnPlateau
from .model import MLP, load
from .optim import SGD, Adam, AdamW, Optimizer, RMSProp
from .preprocessing import prepare_features
from .system import info, set_num_threads

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + error
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind: type, minimum: float, inclusive: bool = True) -> Any:
    """An argparse type: a kind (int or float) >= minimum (> when not inclusive)."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not (value >= minimum if inclusive else value > minimum) or value != value:
            raise argparse.ArgumentTypeError(f"must be {'>=' if inclusive else '>'} {minimum:g}, got {text}")
        return value
    return parse


def _hidden(text: str) -> list[int]:
    """'256,128' -> [256, 128]; '' -> [] (no hidden layer)."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes like 256,128, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be >= 1, got {text!r}")
    return sizes


def _fraction(text: str) -> float:
    value: float = _number(float, 0.0)(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _rates(text: str) -> float | list[float]:
    """'0.2' -> 0.2 (every hidden layer); '0.2,0.1' -> [0.2, 0.1] (one per hidden layer)."""
    rates = [_fraction(part) for part in text.split(",")]
    return rates[0] if len(rates) == 1 else rates


def _augment(text: str) -> Augment:
    """'shift=2,flip' -> Augment(shift=2, flip=True); what the spec leaves out is off."""
    shift, flip = 0, False
    seen: set[str] = set()
    for part in text.split(","):
        key, equals, value = part.strip().partition("=")
        if key in seen:
            raise argparse.ArgumentTypeError(f"{key} is given twice in {text!r}")
        seen.add(key)
        if key == "flip" and not equals:
            flip = True
        elif key == "shift" and value.isascii() and value.isdigit():
            shift = int(value)
        else:
            raise argparse.ArgumentTypeError("expected shift=N (an integer N >= 0) and/or flip, comma-separated, "
                                             f"like shift=2,flip; got {text!r}")
    return Augment(shift, flip)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pydfn", description="Train and use MLPs on Fashion-MNIST, on the CPU.")
    parser.add_argument("--version", action="version", version=f"pydfn {_core.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,evaluate,predict,export,info}")
    data_help = "folder holding the Fashion-MNIST files (default: $PYDFN_DATA, the cache, the system package)"
    threads_help = "threads of the core (default: OMP_NUM_THREADS, else all cores)"

    train = commands.add_parser("train", help="train on Fashion-MNIST (the tutorial by default)",
                                description="Train an MLP on Fashion-MNIST and report validation and test metrics.")
    train.add_argument("--epochs", type=_number(int, 0), default=20, help="default 20")
    train.add_argument("--batch-size", type=_number(int, 1), default=64, help="default 64")
    train.add_argument("--lr", type=_number(float, 0.0, inclusive=False),
                       help="learning rate, default 1e-3 (0.01 for rmsprop and sgd)")
    train.add_argument("--optimizer", choices=("adam", "adamw", "sgd", "rmsprop"), default="adam",
                       help="default adam")
    train.add_argument("--momentum", type=_fraction, default=0.0, help="sgd's and rmsprop's, default 0")
    train.add_argument("--nesterov", action="store_true", help="sgd with Nesterov momentum")
    train.add_argument("--weight-decay", type=_number(float, 0.0), default=0.01,
                       help="adamw's decoupled weight decay, default 0.01")
    train.add_argument("--activation", choices=("relu", "tanh", "sigmoid"), default="relu",
                       help="hidden activation, default relu")
    train.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                       help="of the matrix products: bf16 rounds their inputs to bfloat16 (sums, weights "
                            "and optimizer state stay float32); default fp32")
    train.add_argument("--l1", type=_number(float, 0.0), default=0.0, help="l1 penalty on the weights, default 0")
    train.add_argument("--l2", type=_number(float, 0.0), default=0.0, help="l2 penalty on the weights, default 0")
    train.add_argument("--dropout", type=_rates, default=0.0, metavar="RATES",
                       help="dropout rate of every hidden layer (0.2), or one per hidden layer (0.2,0.1); default 0")
    train.add_argument("--hidden", type=_hidden, default=[256, 128], help="hidden layer sizes, default 256,128")
    train.add_argument("--validation-split", "--val-fraction", dest="validation_split", type=_fraction, default=0.1,
                       help="share of the training set held out for validation, drawn with --seed, default 0.1 "
                            "(0: none; --val-fraction is its old name)")
    train.add_argument("--seed", type=_number(int, 0), default=2,
                       help="seeds the validation split, the initial weights and the shuffling; default 2")
    train.add_argument("--threads", type=_number(int, 1), help=threads_help)
    train.add_argument("--reduce-lr", type=_number(int, 1), metavar="PATIENCE",
                       help="divide the learning rate by 10 (twice at most) after PATIENCE epochs without a lower "
                            "validation loss")
    train.add_argument("--augment", type=_augment, metavar="SPEC",
                       help="train on randomly shifted (by up to N pixels) and mirrored images, drawn anew "
                            "each epoch: shift=N, flip or shift=N,flip")
    train.add_argument("--early-stopping", type=_number(int, 1), metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a lower validation loss; keep the best epoch")
    train.add_argument("--data", metavar="DIR", help=data_help)
    train.add_argument("--out", default="model.npz", help="where to save the trained model, default model.npz")
    train.add_argument("--plots", metavar="DIR", help="save training_curves.png, confusion_matrix.png and "
                                                      "samples.png there (needs matplotlib)")
    train.add_argument("--distributed", action="store_true",
                       help="data-parallel over MPI: run as mpiexec -n N pydfn train --distributed (needs "
                            "pip install 'pydfn[mpi]'); --threads is per rank, by default the cores shared "
                            "out among the node's ranks; only rank 0 prints and saves")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                       help="0 quiet, 1 a line per epoch (and a progress bar on a terminal), 2 also minibatch lines")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="test loss, accuracy and per-class accuracy of a saved model")
    evaluate.add_argument("model", help="a .npz file written by pydfn train or model.save")
    evaluate.add_argument("--data", metavar="DIR", help=data_help)
    evaluate.add_argument("--threads", type=_number(int, 1), help=threads_help)
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser("predict", help="predicted classes, for the test set or an .npy file")
    predict.add_argument("model", help="a .npz file written by pydfn train or model.save")
    predict.add_argument("--input", metavar="FILE.npy",
                         help="images (uint8, (n, 28, 28) or (n, 784)) or float features; default: the test set")
    predict.add_argument("--output", metavar="FILE.npy", help="save the class ids there instead of printing them")
    predict.add_argument("--data", metavar="DIR", help=data_help)
    predict.add_argument("--threads", type=_number(int, 1), help=threads_help)
    predict.set_defaults(run=_predict)

    export = commands.add_parser("export", help="write a saved model as an ONNX graph (needs pydfn[onnx])",
                                 description="Write a saved model as an ONNX graph for onnxruntime and other "
                                             "ONNX runtimes: float32 input (batch, n_features), output the "
                                             "logits (or, with --probabilities, the class probabilities).")
    export.add_argument("model", help="a .npz file written by pydfn train or model.save")
    export.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    export.add_argument("--probabilities", action="store_true",
                        help="end with a softmax: output class probabilities instead of logits (classifiers only)")
    export.set_defaults(run=_export)

    info = commands.add_parser("info", help="version, CPU kernels, threads, where the data is")
    info.add_argument("--data", metavar="DIR", help=data_help)
    info.set_defaults(run=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pydfn`` command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if getattr(args, "threads", None):
            set_num_threads(args.threads)
        code: int = args.run(args)
        return code
    except KeyboardInterrupt:
        print("pydfn: interrupted; nothing saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `pydfn predict m.npz | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush can't fail
        return EXIT_FAILED
    except FloatingPointError as exc:
        print(f"pydfn {args.command}: training diverged: {exc} (try a smaller --lr)", file=sys.stderr)
        return EXIT_FAILED
    except MemoryError as exc:  # e.g. --hidden too wide for this machine, refused before allocating
        print(f"pydfn {args.command}: out of memory: {exc or 'an allocation failed'}", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, TypeError, OSError, EOFError, ImportError) as exc:  # bad input, missing data or files
        print(f"pydfn {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


# --- the commands ------------------------------------------------------------------


def _optimizer(args: argparse.Namespace) -> Optimizer:
    """The optimizer the flags ask for."""
    if args.momentum and args.optimizer not in ("sgd", "rmsprop"):
        raise ValueError(f"--momentum applies to sgd and rmsprop, not {args.optimizer}")
    if args.nesterov and args.optimizer != "sgd":
        raise ValueError("--nesterov applies to sgd only")
    if args.optimizer == "sgd":
        return SGD(args.lr or 0.01, momentum=args.momentum, nesterov=args.nesterov)
    if args.optimizer == "rmsprop":
        return RMSProp(args.lr or 0.01, momentum=args.momentum)
    if args.optimizer == "adamw":
        return AdamW(args.lr or 1e-3, weight_decay=args.weight_decay)
    return Adam(args.lr or 1e-3)


def _train(args: argparse.Namespace) -> int:
    for flag in ("early_stopping", "reduce_lr"):
        if getattr(args, flag) and not args.validation_split:
            raise ValueError(f"--{flag.replace('_', '-')} needs validation data: give --validation-split > 0")
    # Fashion-MNIST's sizes: too wide a --hidden fails now, not by the OOM killer mid-allocation.
    check_network_size([28 * 28, *args.hidden, len(datasets.FASHION_MNIST_CLASSES)], name="--hidden")
    root = True
    if args.distributed:
        from . import distributed  # ImportError names the extra

        root = distributed.rank() == 0
        if not args.threads:  # ranks sharing a node would oversubscribe its cores
            set_num_threads(max(1, (os.cpu_count() or 1) // distributed.ranks_per_node()))
        if not root:
            sys.stdout = open(os.devnull, "w")  # only rank 0 reports
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"--out: the folder {out_dir} does not exist")
    plt_module = None
    if args.plots:
        from . import plot

        plot.new_figure()  # fail now, not after training, when matplotlib is missing
        os.makedirs(args.plots, exist_ok=True)
        plt_module = plot

    where = _find_data(args.data)
    (x, y), (x_test, y_test) = datasets.load_fashion_mnist(where)
    if args.validation_split:
        x_train, x_val, y_train, y_val = datasets.train_val_split(x, y, args.validation_split, seed=args.seed)
        validation = (x_val, y_val)
    else:
        x_train, y_train, validation = x, y, None
    model = MLP([x.shape[1] * x.shape[2], *args.hidden, len(datasets.FASHION_MNIST_CLASSES)], seed=args.seed,
                activation=args.activation, l1=args.l1, l2=args.l2, dropout=args.dropout,
                precision=args.precision)
    optimizer = _optimizer(args)
    print(f"pydfn {_core.__version__} - {_core.isa()} kernels - {_core.get_num_threads()} threads"
          + (f" per rank - {distributed.size()} MPI ranks" if args.distributed else ""))
    print(f"Fashion-MNIST from {where}: {len(x_train)} train, {len(x_val) if validation else 0} validation "
          f"(seed {args.seed}), {len(x_test)} test")
    print(f"{model!r} - {optimizer!r} - batch {args.batch_size} - {_plural(args.epochs, 'epoch')}"
          + (f" - {args.augment!r}" if args.augment else ""), flush=True)
    callbacks: list[Any] = [EarlyStopping(patience=args.early_stopping)] if args.early_stopping else []
    if args.reduce_lr:
        callbacks.append(ReduceLROnPlateau(patience=args.reduce_lr, min_lr=optimizer.lr / 100, verbose=True))
    history = model.fit(x_train, y_train, optimizer, epochs=args.epochs, batch_size=args.batch_size,
                        validation_data=validation, callbacks=callbacks, verbose=args.verbose,
                        distributed=args.distributed, augment=args.augment)

    y_pred = _report_test(model, x_test, y_test)  # on every rank: cheap, and it keeps the code one path
    times = history.history.get("time", [])
    if times:
        mean = float(np.mean(times))
        print(f"Time per epoch: {mean:.2f} s ({len(x_train) / mean:,.0f} samples/s); "
              f"{_plural(len(times), 'epoch')} in {sum(times):.1f} s")
    if not root:  # every rank holds the same model: rank 0 saves it
        return 0
    model.save(args.out)
    print(f"Saved the model to {args.out}")
    if plt_module:
        _save_plots(plt_module, args.plots, history, x_test, y_test, y_pred)
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _find_data(data: str | None, download: bool = True) -> Path:
    """Where Fashion-MNIST is; an explicit --data folder must hold it (no silent fallback)."""
    try:
        return datasets.find_fashion_mnist(data, download=download)
    except FileNotFoundError as exc:
        if data is None:
            raise
        raise FileNotFoundError(f"--data {data}: no verified Fashion-MNIST files there ({exc})") from None


def _report_test(model: MLP, x_test: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """Print test loss, accuracy and per-class accuracy; return the predictions."""
    x_test = prepare_features(x_test, model.layer_sizes[0], "test images")
    loss, accuracy = model.evaluate(x_test, y_test)
    y_pred = model.predict(x_test)
    names = _class_names(model)
    print(f"Test: loss {loss:.4f} - accuracy {accuracy:.4f}")
    print("Per-class accuracy:")
    width = max(len(n) for n in names)
    for name, acc in zip(names, metrics.per_class_accuracy(y_test, y_pred, len(names))):
        print(f"  {name:<{width}}  {acc:.4f}")
    return y_pred


def _class_names(model: MLP) -> list[str]:
    classes = model.layer_sizes[-1]
    names = datasets.FASHION_MNIST_CLASSES
    return list(names) if classes == len(names) else [str(i) for i in range(classes)]


def _save_plots(plot: Any, folder: str, history: Any, x_test: np.ndarray, y_test: np.ndarray,
                y_pred: np.ndarray) -> None:
    figures = {"training_curves.png": plot.training_curves(history),
               "confusion_matrix.png": plot.confusion_matrix(y_test, y_pred,
                                                             class_names=datasets.FASHION_MNIST_CLASSES),
               "samples.png": plot.sample_grid(x_test, y_test, rows=2, cols=2)}
    for name, fig in figures.items():
        fig.savefig(os.path.join(folder, name), dpi=120)
    print(f"Saved {', '.join(figures)} in {folder}")


def _load_for_fashion_mnist(path: str) -> MLP:
    model = load(path)
    sizes = model.layer_sizes
    if sizes[0] != 28 * 28:
        raise ValueError(f"{path} holds a network of {sizes[0]} inputs; Fashion-MNIST images have {28 * 28} pixels")
    return model


def _evaluate(args: argparse.Namespace) -> int:
    model = _load_for_fashion_mnist(args.model)
    _, (x_test, y_test) = datasets.load_fashion_mnist(_find_data(args.data))
    print(f"{args.model}: {model!r}")
    history = model.history
    if history is not None and len(history):
        best = history.best_epoch()
        print(f"Trained {_plural(len(history), 'epoch')}"
              + (f"; best val_loss at epoch {best + 1}" if best is not None else "")
              + (f" ({history.stop_reason})" if history.stop_reason else ""))
    if model.layer_sizes[-1] != len(datasets.FASHION_MNIST_CLASSES):
        raise ValueError(f"{args.model} has {model.layer_sizes[-1]} outputs; Fashion-MNIST has 10 classes")
    _report_test(model, x_test, y_test)
    return 0


def _predict(args: argparse.Namespace) -> int:
    model = _load_for_fashion_mnist(args.model)
    if args.input:
        with open(args.input, "rb") as f:  # allow_pickle=False: an .npy file can't run code
            if f.read(6) == b"\x93NUMPY":
                f.seek(0)
                try:
                    check_npy(f)  # before np.load allocates what the header claims
                except ValueError as exc:
                    raise ValueError(f"--input {args.input}: {exc}") from None
            f.seek(0)
            x = np.load(f, allow_pickle=False)
        if not isinstance(x, np.ndarray):
            raise ValueError(f"--input {args.input}: expected one array (.npy), got an .npz archive")
    else:
        _, (x, _) = datasets.load_fashion_mnist(_find_data(args.data))
    proba = model.predict_proba(prepare_features(x, model.layer_sizes[0], "--input" if args.input else "x"))
    labels = proba.argmax(axis=1)
    if args.output:
        np.save(args.output, labels)
        print(f"Saved {len(labels)} class ids to {args.output}")
        return 0
    names = _class_names(model)
    lines = (f"{i}\t{label}\t{names[label]}\t{proba[i, label]:.4f}" for i, label in enumerate(labels))
    sys.stdout.write("index\tclass\tname\tprobability\n" + "\n".join(lines) + "\n")
    return 0


def _export(args: argparse.Namespace) -> int:
    model = load(args.model)
    # a 10-class model from `pydfn train` classifies Fashion-MNIST, as evaluate and predict assume
    fashion_mnist = model.is_classifier and model.layer_sizes[-1] == len(datasets.FASHION_MNIST_CLASSES)
    names = _class_names(model) if fashion_mnist else None
    model.to_onnx(args.out, probabilities=args.probabilities, class_names=names)
    output = "probabilities" if args.probabilities else "logits"
    print(f"Saved {args.out}: input (batch, {model.layer_sizes[0]}) float32 -> {output} "
          f"(batch, {model.layer_sizes[-1]})")
    return 0


def _info(args: argparse.Namespace) -> int:
    facts = info()
    print(f"pydfn {facts['version']} (Python {platform.python_version()}, NumPy {np.__version__})")
    cap = facts["max_isa"]
    print(f"CPU kernels: {facts['kernels']} (this CPU runs up to {facts['cpu_kernels']}"
          + (f"; capped by PYDFN_MAX_ISA={cap})" if cap else ")"))
    print(f"Threads: {facts['threads']} (OpenMP {'on' if facts['openmp'] else 'off'})")
    try:
        print(f"Fashion-MNIST: {_find_data(args.data, download=False)}")
    except FileNotFoundError as exc:
        print(f"Fashion-MNIST: not found\n{exc}")
    return 0
