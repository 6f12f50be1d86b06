"""The ``pydfn`` command: train, evaluate, predict, export, info.

``pydfn train`` with its defaults is the tutorial: Fashion-MNIST, 10% held out for
validation (seed 2), 784-256-128-10 ReLU, Adam lr 0.001, batch 64, 20 epochs.
Mistakes (bad flags, missing data, unreadable files) end with one ``error:``
message and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn, Sequence

import numpy as np

from . import _core, datafile, datasets, metrics
from ._atomic import check_writable, write_atomically
from ._engine import batches_per_epoch
from ._validation import as_inputs, batch_size_for, check_network_size
from .augment import Augment
from .callbacks import Callback, EarlyStopping, ReduceLROnPlateau
from .model import ACTIVATIONS, LOSSES, MLP, PRECISIONS, load
from .optim import OPTIMIZERS, SGD, Adam, AdamW, Optimizer, RMSProp
from .preprocessing import prepare_features, validation_count
from .schedules import CosineDecay, OneCycle, Schedule, StepDecay
from .system import info, set_num_threads

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130

# Named presets of train's flags. `--recipe NAME` puts NAME's flags first, so
# flags given on the command line come later and win. "best": the most accurate
# MLP found within 800 tutorial epochs of time on 2 cores, chosen on the
# validation split only (README, "The recipe").
RECIPES = {
    "best": ("--schedule", "cosine", "--warmup", "1", "--hidden", "1024,512", "--batch-size", "128",
             "--epochs", "90", "--dropout", "0.3", "--augment", "flip"),
}
# The flags that shape one schedule only (dest: that --schedule).
SCHEDULE_FLAGS = {"warmup": "cosine", "step_size": "step", "gamma": "step"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + error
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind: type, minimum: float, inclusive: bool = True, maximum: float | None = None) -> Any:
    """An argparse type: a finite kind (int or float) >= minimum (> when not inclusive), and
    <= maximum if given: refused as the flag it came with, before any data is read."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if value in (math.inf, -math.inf):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if not (value >= minimum if inclusive else value > minimum) or value != value:
            raise argparse.ArgumentTypeError(f"must be {'>=' if inclusive else '>'} {minimum:g}, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum:g}, got {text}")
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
    train.add_argument("--recipe", choices=sorted(RECIPES),
                       help="a named preset of the flags below, printed when training starts; flags given "
                            "as well override it (best: the most accurate recipe, README)")
    train.add_argument("--epochs", type=_number(int, 0), default=20, help="default 20")
    train.add_argument("--batch-size", type=_number(int, 1), default=64, help="default 64")
    train.add_argument("--lr", type=_number(float, 0.0, inclusive=False),
                       help="learning rate, default 1e-3 (0.01 for rmsprop and sgd)")
    train.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="adam",
                       help="default adam")
    train.add_argument("--momentum", type=_fraction, default=0.0, help="sgd's and rmsprop's, default 0")
    train.add_argument("--nesterov", action="store_true", help="sgd with Nesterov momentum")
    train.add_argument("--weight-decay", type=_number(float, 0.0),
                       help="adamw's decoupled weight decay, default 0.01")
    train.add_argument("--activation", choices=ACTIVATIONS, default="relu",
                       help="hidden activation, default relu")
    train.add_argument("--precision", choices=PRECISIONS, default="fp32",
                       help="of the matrix products: bf16 rounds their inputs to bfloat16 (sums, weights "
                            "and optimizer state stay float32); default fp32")
    train.add_argument("--l1", type=_number(float, 0.0), default=0.0, help="l1 penalty on the weights, default 0")
    train.add_argument("--l2", type=_number(float, 0.0), default=0.0, help="l2 penalty on the weights, default 0")
    train.add_argument("--label-smoothing", type=_number(float, 0.0, maximum=1.0), default=0.0, metavar="EPS",
                       help="softmax_xent's label smoothing in [0, 1] (PyTorch's definition), default 0")
    train.add_argument("--dropout", type=_rates, default=0.0, metavar="RATES",
                       help="dropout rate of every hidden layer (0.2), or one per hidden layer (0.2,0.1); default 0")
    train.add_argument("--hidden", type=_hidden, default=[256, 128], help="hidden layer sizes, default 256,128")
    train.add_argument("--validation-split", type=_fraction, default=0.1,
                       help="share of the training set held out for validation, drawn with --seed, default 0.1 "
                            "(0: none)")
    train.add_argument("--seed", type=_number(int, 0), default=2,
                       help="seeds the validation split, the initial weights and the shuffling; default 2")
    train.add_argument("--threads", type=_number(int, 1), help=threads_help)
    train.add_argument("--reduce-lr", type=_number(int, 1), metavar="PATIENCE",
                       help="divide the learning rate by 10 (twice at most) after PATIENCE epochs without a lower "
                            "validation loss")
    train.add_argument("--schedule", choices=("cosine", "step", "onecycle"),
                       help="learning-rate schedule, set per batch from --lr: cosine (linear warm-up from 0 over "
                            "--warmup epochs, then cosine decay to 0 at the end of the run), step (times --gamma every "
                            "--step-size epochs), onecycle (PyTorch's OneCycleLR with max_lr --lr over the run); "
                            "default none (constant --lr)")
    train.add_argument("--warmup", type=_number(int, 0), metavar="EPOCHS",
                       help="with --schedule cosine: epochs of linear warm-up, default 0")
    train.add_argument("--step-size", type=_number(int, 1), metavar="EPOCHS",
                       help="with --schedule step: epochs between two decays (required)")
    train.add_argument("--gamma", type=_number(float, 0.0, inclusive=False), metavar="G",
                       help="with --schedule step: the factor of each decay, in (0, 1], default 0.1")
    train.add_argument("--augment", type=_augment, metavar="SPEC",
                       help="train on randomly shifted (by up to N pixels) and mirrored images, drawn anew "
                            "each epoch: shift=N, flip or shift=N,flip")
    train.add_argument("--early-stopping", type=_number(int, 1), metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a lower validation loss; keep the best epoch")
    train.add_argument("--data", metavar="DIR", help=data_help)
    train.add_argument("--data-file", metavar="FILE",
                       help="train on your own data instead of Fashion-MNIST: an .npz with x_train, y_train "
                            "(optionally x_test, y_test) or a .csv with a header row, one sample a row")
    train.add_argument("--label-column", metavar="NAME",
                       help="with a .csv --data-file: the header of the label column, default the last column")
    train.add_argument("--loss", choices=LOSSES, default="softmax_xent",
                       help="softmax_xent (classification, default); mse or mae: regression on a --data-file's "
                            "numeric labels")
    train.add_argument("--out", default="model.npz", help="where to save the trained model, default model.npz")
    train.add_argument("--plots", metavar="DIR", help="save training_curves.png, confusion_matrix.png and "
                                                      "samples.png there (needs matplotlib)")
    train.add_argument("--distributed", action="store_true",
                       help="data-parallel over MPI: run as mpiexec -n N pydfn train --distributed (needs "
                            "pip install 'pydfn[mpi]'); --threads is per rank, by default the cores shared "
                            "out among the node's ranks; only rank 0 prints and saves")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                       help="0 quiet (errors only), 1 a line per epoch (and a progress bar on a terminal), "
                            "2 also minibatch lines")
    train.set_defaults(run=_train)

    input_help = ("samples: .npy, .npz (its array x, x_test or only array) or .csv (one sample a row, numbers, "
                  "an optional header row); uint8 images (n, 28, 28) are divided by 255, other numbers are "
                  "features as they are (n, inputs); default: the Fashion-MNIST test set")
    evaluate = commands.add_parser("evaluate", help="loss, accuracy and per-class accuracy of a saved model, "
                                                    "on the test set or your own data")
    evaluate.add_argument("model", help="a .npz file written by pydfn train or model.save")
    evaluate.add_argument("--input", metavar="FILE", help=input_help + " (give --labels with it)")
    evaluate.add_argument("--labels", metavar="FILE",
                          help="the class ids (0 to classes-1) of --input: .npy, .npz (its array y, y_test or "
                               "only array) or .csv (one column, an optional header row)")
    evaluate.add_argument("--data", metavar="DIR", help=data_help)
    evaluate.add_argument("--data-file", metavar="FILE",
                          help="evaluate on a data file (as pydfn train --data-file reads it) instead of "
                               "Fashion-MNIST: on its test part, or on all its samples when it has none")
    evaluate.add_argument("--label-column", metavar="NAME", help="with a .csv --data-file: the label column")
    evaluate.add_argument("--threads", type=_number(int, 1), help=threads_help)
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser("predict", help="predicted classes, for the test set or your own file")
    predict.add_argument("model", help="a .npz file written by pydfn train or model.save")
    predict.add_argument("--input", metavar="FILE", help=input_help + "; one image (28, 28) or one row is one sample")
    predict.add_argument("--output", metavar="FILE",
                         help="write the predictions there instead of printing them; the extension picks the format: "
                              ".npy (an array: the class ids, or with --probabilities the probabilities "
                              "(n, classes)) or .csv (the printed table, comma-separated)")
    predict.add_argument("--probabilities", action="store_true",
                         help="give every class's probability, not only the predicted class")
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
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "recipe", None):  # again, with the recipe's flags before the ones given
        given = list(sys.argv[1:] if argv is None else argv)
        after_command = given.index("train") + 1
        flags = _recipe_flags(args.recipe, args)
        args = parser.parse_args([*given[:after_command], *flags, *given[after_command:]])
        args.recipe_flags = flags
    try:
        if getattr(args, "threads", None):
            set_num_threads(args.threads)
        with contextlib.ExitStack() as stack:
            if getattr(args, "verbose", 1) == 0:  # quiet: errors only (on stderr)
                stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
            code: int = args.run(args)
        return code
    except KeyboardInterrupt:
        print("pydfn: interrupted; nothing saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `pydfn predict m.npz | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush can't fail
        return EXIT_FAILED
    except FloatingPointError as exc:  # training diverged, or a prediction overflowed (its message says why)
        if args.command == "train":
            print(f"pydfn train: training diverged: {exc} (try a smaller --lr)", file=sys.stderr)
        else:
            print(f"pydfn {args.command}: error: {exc}", file=sys.stderr)
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
    if args.weight_decay is not None and args.optimizer != "adamw":
        raise ValueError(f"--weight-decay applies to adamw, not {args.optimizer}")
    if args.optimizer == "sgd":
        return SGD(args.lr or 0.01, momentum=args.momentum, nesterov=args.nesterov)
    if args.optimizer == "rmsprop":
        return RMSProp(args.lr or 0.01, momentum=args.momentum)
    if args.optimizer == "adamw":
        decay = {} if args.weight_decay is None else {"weight_decay": args.weight_decay}  # else AdamW's default
        return AdamW(args.lr or 1e-3, **decay)
    return Adam(args.lr or 1e-3)


def _recipe_flags(name: str, given: argparse.Namespace) -> list[str]:
    """Recipe NAME's flags, less its learning-rate flags when the ones ``given`` set it otherwise.

    Given flags win over a recipe's, but ``--recipe best --schedule step`` would still
    carry the recipe's ``--warmup``, which only cosine takes, and ``--reduce-lr`` its
    ``--schedule``: the recipe's schedule and its flags are left out, rather than refused
    as if the user had given them.
    """
    pairs = list(zip(RECIPES[name][::2], RECIPES[name][1::2]))
    schedule: str | None
    if given.schedule is not None:
        schedule = given.schedule
    elif given.reduce_lr:
        schedule = None  # ReduceLROnPlateau sets the rate
    else:
        schedule = dict(pairs).get("--schedule")

    def fits(flag: str, value: str) -> bool:
        if flag == "--schedule":
            return value == schedule
        dest = flag[2:].replace("-", "_")
        if dest in SCHEDULE_FLAGS:  # a flag of one schedule only
            return SCHEDULE_FLAGS[dest] == schedule
        return True

    return [part for flag, value in pairs if fits(flag, value) for part in (flag, value)]


def _check_schedule_flags(args: argparse.Namespace) -> None:
    """The schedule flags fit together (before any data loads)."""
    for flag, kind in SCHEDULE_FLAGS.items():
        if getattr(args, flag) is not None and args.schedule != kind:
            raise ValueError(f"--{flag.replace('_', '-')} applies to --schedule {kind}")
    if args.schedule is None:
        return
    if args.reduce_lr:
        raise ValueError("--schedule and --reduce-lr both set the learning rate: give one of them")
    if args.epochs < 1:
        raise ValueError("--schedule needs --epochs >= 1")
    if args.schedule == "cosine" and (args.warmup or 0) >= args.epochs:
        raise ValueError(f"--warmup ({args.warmup} epochs) must be less than --epochs ({args.epochs})")
    if args.schedule == "step" and args.step_size is None:
        raise ValueError("--schedule step needs --step-size EPOCHS")
    if args.gamma is not None and args.gamma > 1:
        raise ValueError(f"--gamma must be in (0, 1], got {args.gamma}")


def _schedule(args: argparse.Namespace, lr: float, n_train: int) -> Schedule | None:
    """The schedule the flags ask for, its epochs turned into steps of ``n_train`` rows."""
    steps = batches_per_epoch(n_train, args.batch_size)
    if args.schedule == "cosine":
        return CosineDecay(lr, args.epochs * steps, warmup_steps=(args.warmup or 0) * steps)
    if args.schedule == "step":
        return StepDecay(lr, args.step_size * steps, gamma=0.1 if args.gamma is None else args.gamma)
    if args.schedule == "onecycle":
        return OneCycle(lr, args.epochs * steps)
    return None


def _train(args: argparse.Namespace) -> int:
    plan = _plan_training(args)
    run = _build_training(args)
    return _run_training(args, plan, run)


@dataclasses.dataclass
class _TrainingPlan:
    """What `pydfn train` settled before loading anything."""

    root: bool  # this process reports and saves (rank 0, or the only one)
    plot: Any  # pydfn.plot when --plots asks for figures, else None


def _plan_training(args: argparse.Namespace) -> _TrainingPlan:
    """Every check that needs no data, so a mistake fails before the data loads and training runs."""
    if args.recipe:
        left_out = "" if args.recipe_flags == list(RECIPES[args.recipe]) else \
            " (its learning-rate flags that do not fit the ones given are left out)"
        print(f"Recipe {args.recipe}: pydfn train {' '.join(args.recipe_flags)}{left_out}", flush=True)
    for flag in ("early_stopping", "reduce_lr"):
        if getattr(args, flag) and not args.validation_split:
            raise ValueError(f"--{flag.replace('_', '-')} needs validation data: give --validation-split > 0")
    _check_schedule_flags(args)
    if args.data_file is None:
        for flag in ("label_column", "loss"):
            if getattr(args, flag) not in (None, "softmax_xent"):
                raise ValueError(f"--{flag.replace('_', '-')} applies to a --data-file; Fashion-MNIST is classification")
        # Fashion-MNIST's sizes: too wide a --hidden or --batch-size fails now, not after the data has loaded
        # (or by the OOM killer mid-allocation).
        check_network_size([28 * 28, *args.hidden, len(datasets.FASHION_MNIST_CLASSES)], name="--hidden")
        n_train = datasets.FASHION_MNIST_FILES["train_images"].shape[0]
        n_train -= validation_count(n_train, args.validation_split)
        batch_size_for(args.batch_size, n_train, "--batch-size")
    elif args.data is not None:
        raise ValueError("--data (the Fashion-MNIST folder) and --data-file exclude each other")
    root = True
    if args.distributed:
        from . import distributed  # ImportError names the extra

        root = distributed.rank() == 0
        if not args.threads:  # ranks sharing a node would oversubscribe its cores
            set_num_threads(max(1, (os.cpu_count() or 1) // distributed.ranks_per_node()))
        if not root:
            sys.stdout = open(os.devnull, "w")  # only rank 0 reports
    _check_output(args.out, "--out", [args.data_file])
    if not args.plots:
        return _TrainingPlan(root, None)
    from . import plot

    plot.new_figure()  # fail now, not after training, when matplotlib is missing
    os.makedirs(args.plots, exist_ok=True)
    return _TrainingPlan(root, plot)


@dataclasses.dataclass
class _TrainingRun:
    """The data, model and settings of one `pydfn train`, ready to fit."""

    model: MLP
    optimizer: Optimizer
    x_train: np.ndarray
    y_train: np.ndarray
    validation: tuple[np.ndarray, np.ndarray] | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    schedule: Schedule | None
    callbacks: list[Any]


def _build_training(args: argparse.Namespace) -> _TrainingRun:
    """Loads the data, splits off validation, builds the model and optimizer, and says so."""
    x, y, x_test, y_test, class_names, source = _training_data(args)
    n_inputs = int(np.prod(x.shape[1:]))
    n_outputs = len(class_names) if class_names is not None else y.shape[1]
    check_network_size([n_inputs, *args.hidden, n_outputs], name="--hidden")
    validation: tuple[np.ndarray, np.ndarray] | None = None
    if args.validation_split:
        x_train, x_val, y_train, y_val = datasets.train_val_split(x, y, args.validation_split, seed=args.seed)
        validation = (x_val, y_val)
    else:
        x_train, y_train = x, y
    model = MLP([n_inputs, *args.hidden, n_outputs], seed=args.seed, activation=args.activation, loss=args.loss,
                l1=args.l1, l2=args.l2, dropout=args.dropout, precision=args.precision,
                label_smoothing=args.label_smoothing)
    model.class_names = class_names
    optimizer = _optimizer(args)
    ranks = ""
    if args.distributed:
        from . import distributed

        ranks = f" per rank - {distributed.size()} MPI ranks"
    print(f"pydfn {_core.__version__} - {_core.isa()} kernels - {_plural(_core.get_num_threads(), 'thread')}{ranks}")
    test_part = f"{len(x_test)} test" if x_test is not None else "no test part (no test metrics)"
    print(f"{source}: {len(x_train)} train, {len(validation[0]) if validation else 0} validation "
          f"(seed {args.seed}), {test_part}")
    if class_names is not None and args.data_file is not None:
        print(f"Classes ({len(class_names)}): {', '.join(class_names)}")
    print(f"{model!r} - {optimizer!r} - batch {args.batch_size} - {_plural(args.epochs, 'epoch')}"
          + (f" - {args.augment!r}" if args.augment else ""), flush=True)
    schedule = _schedule(args, optimizer.lr, len(x_train))
    if schedule is not None:
        print(f"Learning rate per batch: {schedule!r} "
              f"({batches_per_epoch(len(x_train), args.batch_size)} steps per epoch)", flush=True)
    callbacks: list[Any] = [EarlyStopping(patience=args.early_stopping)] if args.early_stopping else []
    if args.reduce_lr:
        callbacks.append(ReduceLROnPlateau(patience=args.reduce_lr, min_lr=optimizer.lr / 100, verbose=True))
    return _TrainingRun(model, optimizer, x_train, y_train, validation, x_test, y_test, schedule, callbacks)


def _run_training(args: argparse.Namespace, plan: _TrainingPlan, run: _TrainingRun) -> int:
    """Fits, reports the test metrics and the time per epoch, saves the model (and plots);
    on Ctrl-C saves the last completed epoch's model."""
    model, last = run.model, _LastEpoch()
    try:
        history = model.fit(run.x_train, run.y_train, run.optimizer, epochs=args.epochs, batch_size=args.batch_size,
                            validation_data=run.validation, callbacks=[*run.callbacks, last], verbose=args.verbose,
                            distributed=args.distributed, augment=args.augment, lr_schedule=run.schedule)
    except KeyboardInterrupt:
        if last.snapshot is None or not plan.root:
            raise  # nothing completed: main says nothing was saved
        _save_trained(last.snapshot, args.out)
        print(f"pydfn: interrupted; saved the model after epoch {last.epoch + 1} (the last completed) "
              f"to {args.out}", file=sys.stderr)
        return EXIT_INTERRUPTED

    # on every rank: cheap, and it keeps the code one path
    y_pred = None
    if run.x_test is not None and run.y_test is not None:
        y_pred = _report_test(model, run.x_test, run.y_test)
    times = history.history.get("time", [])
    if times:
        mean = float(np.mean(times))
        print(f"Time per epoch: {mean:.2f} s ({len(run.x_train) / mean:,.0f} samples/s); "
              f"{_plural(len(times), 'epoch')} in {sum(times):.1f} s")
    if not plan.root:  # every rank holds the same model: rank 0 saves it
        return 0
    _save_trained(model, args.out)
    print(f"Saved the model to {args.out}")
    if plan.plot:
        _save_plots(plan.plot, args.plots, model, history, run.x_test, run.y_test, y_pred)
    return 0


def _save_trained(model: MLP, path: str) -> None:
    """Saves the model trained to path (checked writable before training). If that fails now
    (a full disk, the folder removed meanwhile), the training is not lost: the model goes to a
    new file in the temp folder and the error says where."""
    try:
        model.save(path)
    except OSError as exc:
        fd, rescue = tempfile.mkstemp(prefix="pydfn-trained-", suffix=".npz")
        os.close(fd)
        try:
            model.save(rescue)
        except OSError:
            os.unlink(rescue)
            raise exc from None
        raise OSError(exc.errno, f"{exc.strerror}; the trained model is saved in {rescue} instead") from None


class _LastEpoch(Callback):
    """Keeps a copy of the model after each completed epoch, for Ctrl-C to save."""

    snapshot: MLP | None = None
    epoch = -1

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.snapshot, self.epoch = copy.deepcopy(self.model), epoch


def _training_data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                                      np.ndarray | None, list[str] | None, str]:
    """``x, y, x_test, y_test, class_names, where`` from --data-file, else Fashion-MNIST
    (class_names None for regression; x_test, y_test None when the file has no test part)."""
    if args.data_file is None:
        where = _find_data(args.data)
        (x, y), (x_test, y_test) = datasets.load_fashion_mnist(where)
        return x, y, x_test, y_test, list(datasets.FASHION_MNIST_CLASSES), f"Fashion-MNIST from {where}"
    from .datafile import load_data_file

    task = "classification" if args.loss == "softmax_xent" else "regression"
    data = load_data_file(args.data_file, task=task, label_column=args.label_column)
    return data.x, data.y, data.x_test, data.y_test, data.class_names, args.data_file


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


def _report_test(model: MLP, x_test: np.ndarray, y_test: np.ndarray, what: str = "Test",
                 name: str = "test images") -> np.ndarray:
    """Print test loss, accuracy and per-class accuracy (for regression: loss and mean
    absolute error); return the predictions."""
    x_test = prepare_features(x_test, model.layer_sizes[0], name)
    loss, metric = model.evaluate(x_test, y_test)
    y_pred: np.ndarray = model.predict(x_test)
    if not model.is_classifier:
        print(f"{what}: loss {loss:.4f} - mean absolute error {metric:.4f}")
        return y_pred
    names = _class_names(model)
    print(f"{what}: loss {loss:.4f} - accuracy {metric:.4f}")
    print("Per-class accuracy:")
    width = max(len(n) for n in names)
    for name, acc in zip(names, metrics.per_class_accuracy(y_test, y_pred, len(names))):
        print(f"  {name:<{width}}  {acc:.4f}")
    return y_pred


def _class_names(model: MLP) -> list[str]:
    """The names saved with the model, else Fashion-MNIST's for 10 classes, else the class ids."""
    if model.class_names is not None:
        return list(model.class_names)
    classes = model.layer_sizes[-1]
    names = datasets.FASHION_MNIST_CLASSES
    return list(names) if classes == len(names) else [str(i) for i in range(classes)]


def _save_plots(plot: Any, folder: str, model: MLP, history: Any, x_test: np.ndarray | None,
                y_test: np.ndarray | None, y_pred: np.ndarray | None) -> None:
    """The training curves; with test data of a classifier, its confusion matrix; for images, samples."""
    figures = {"training_curves.png": plot.training_curves(history)}
    if y_pred is not None and model.is_classifier:
        figures["confusion_matrix.png"] = plot.confusion_matrix(y_test, y_pred, class_names=_class_names(model))
    if x_test is not None and x_test.ndim == 3 and _class_names(model) == list(datasets.FASHION_MNIST_CLASSES):
        figures["samples.png"] = plot.sample_grid(x_test, y_test, rows=2, cols=2)
    for name, fig in figures.items():
        write_atomically(os.path.join(folder, name), lambda f: fig.savefig(f, format="png", dpi=120))
    print(f"Saved {', '.join(figures)} in {folder}")


def _load_model(path: str, own_data: bool, classifier: bool = False) -> MLP:
    """The model at ``path`` (a classifier if asked); without the user's own data it must fit
    Fashion-MNIST's images."""
    model = load(path)
    if classifier and not model.is_classifier:
        raise ValueError(f"{path} holds a regression model (loss {model.loss!r}); this command needs a classifier")
    if not own_data and model.layer_sizes[0] != 28 * 28:
        raise ValueError(f"{path} holds a network of {model.layer_sizes[0]} inputs; Fashion-MNIST images have "
                         f"{28 * 28} pixels (give your own data with --input)")
    return model


def _evaluate(args: argparse.Namespace) -> int:
    if (args.input is None) != (args.labels is None):
        raise ValueError("--input and --labels go together: the samples and their class ids")
    if args.input is not None and args.data_file is not None:
        raise ValueError("--input/--labels and --data-file exclude each other: give your data one way")
    model = _load_model(args.model, own_data=args.input is not None or args.data_file is not None,
                        classifier=args.data_file is None)
    if args.input:
        x_test = datafile.read_array(args.input)
        y_test = datafile.read_labels(args.labels, model.layer_sizes[-1])
        if len(y_test) != len(x_test):
            raise ValueError(f"--labels {args.labels} has {len(y_test)} labels but --input has {len(x_test)} samples")
    elif args.data_file:
        x_test, y_test = _evaluation_data(model, args.data_file, args.label_column)
    else:
        if model.layer_sizes[-1] != len(datasets.FASHION_MNIST_CLASSES):
            raise ValueError(f"{args.model} has {model.layer_sizes[-1]} outputs; Fashion-MNIST has 10 classes")
        _, (x_test, y_test) = datasets.load_fashion_mnist(_find_data(args.data))
    print(f"{args.model}: {model!r}")
    history = model.history
    if history is not None and len(history):
        best = history.best_epoch()
        print(f"Trained {_plural(len(history), 'epoch')}"
              + (f"; best val_loss at epoch {best}" if best is not None else "")
              + (f" ({history.stop_reason})" if history.stop_reason else ""))
    if args.input:
        _report_test(model, x_test, y_test, what=args.input, name="--input")
    else:
        _report_test(model, x_test, y_test)
    return 0


def _evaluation_data(model: MLP, path: str, label_column: str | None) -> tuple[np.ndarray, np.ndarray]:
    """A data file's test part (else all its samples), labelled with the model's class ids."""
    from .datafile import DataFileError, load_data_file

    data = load_data_file(path, task="classification" if model.is_classifier else "regression",
                          label_column=label_column)
    has_test = data.x_test is not None and data.y_test is not None
    x, y = (data.x_test, data.y_test) if has_test else (data.x, data.y)
    assert x is not None and y is not None
    print(f"{path}: {'its test part' if has_test else 'all its samples (it has no test part)'}, {len(x)} samples")
    if x.shape[1] != model.layer_sizes[0]:
        raise DataFileError(f"{path}: {x.shape[1]} features; the model takes {model.layer_sizes[0]}")
    if data.class_names is None:
        return x, y
    known = _class_names(model)
    unknown = [n for n in data.class_names if n not in known]
    if unknown:
        raise DataFileError(f"{path}: labels the model does not know: {unknown[:5]} (its classes: {known[:20]})")
    ids = np.array([known.index(n) for n in data.class_names], dtype=np.int32)
    return x, ids[y]


def _write_table(header: list[str], rows: list[list[str]], output: str | None) -> int:
    """predict's table: tab-separated on stdout, or comma-separated in the .csv ``output``."""
    datafile.write_table(header, rows, output)
    if output is not None:
        print(f"Saved the predictions of {_plural(len(rows), 'sample')} to {output}")
    return 0


def _check_output(path: str, flag: str, inputs: Sequence[str | None]) -> None:
    """Refuses, before any work, an output path that cannot be written (a folder, in a missing
    folder, read-only) or is one of the command's inputs (writing it would destroy what the
    command reads). What only the write can find (a full disk) the write reports."""
    check_writable(path)
    for given in inputs:
        if given is not None and os.path.exists(path) and os.path.exists(given) and os.path.samefile(path, given):
            raise ValueError(f"{flag} {path} is also an input of this command: writing it would destroy it")


def _save_array(path: str, array: np.ndarray) -> None:
    write_atomically(path, lambda f: np.save(f, array))


def _predict(args: argparse.Namespace) -> int:
    out_kind = os.path.splitext(args.output)[1].lower() if args.output else None
    if out_kind not in (None, ".npy", ".csv"):
        raise ValueError(f"--output {args.output}: unknown type {out_kind or '(none)'!r}: use .npy or .csv")
    if args.output:
        _check_output(args.output, "--output", [args.model, args.input])
    model = _load_model(args.model, own_data=args.input is not None)
    if args.input:
        x = datafile.read_array(args.input)
    else:
        _, (x, _) = datasets.load_fashion_mnist(_find_data(args.data))
    # one rule with the Python API's; one sample (an image (28, 28) or a row) is one row
    features, _ = as_inputs(x, model.layer_sizes[0], name="--input" if args.input else "test images")
    if not model.is_classifier:  # regression: the predicted values
        if args.probabilities:
            raise ValueError(f"--probabilities: {args.model} is a regression model (loss {model.loss!r})")
        values = model.predict(features)
        if out_kind == ".npy":
            _save_array(args.output, values)
            print(f"Saved the predictions of {_plural(len(values), 'sample')} to {args.output}")
            return 0
        return _write_table(["index", *(f"value{j}" for j in range(values.shape[1]))],
                            [[str(i), *(f"{v:.6g}" for v in row)] for i, row in enumerate(values)], args.output)
    proba = model.predict_proba(features)
    labels = proba.argmax(axis=1)
    if out_kind == ".npy":
        _save_array(args.output, proba if args.probabilities else labels)
        print(f"Saved the probabilities of {_plural(len(labels), 'sample')} ({proba.shape[1]} classes) to {args.output}"
              if args.probabilities else f"Saved {len(labels)} class ids to {args.output}")
        return 0
    names = _class_names(model)
    if args.probabilities:
        return _write_table(["index", "class", *names],
                            [[str(i), str(label), *(f"{p:.4f}" for p in proba[i])] for i, label in enumerate(labels)],
                            args.output)
    return _write_table(["index", "class", "name", "probability"],
                        [[str(i), str(label), names[label], f"{proba[i, label]:.4f}"] for i, label in enumerate(labels)],
                        args.output)


def _export(args: argparse.Namespace) -> int:
    _check_output(args.out, "the output", [args.model])
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
    capped = facts["max_isa"] is not None and facts["kernels"] != facts["cpu_kernels"]
    print(f"CPU kernels: {facts['kernels']} (this CPU runs up to {facts['cpu_kernels']}"
          + (f"; capped by PYDFN_MAX_ISA={facts['max_isa']})" if capped else ")"))
    if facts["isa_note"]:
        print(f"  {facts['isa_note']}")
    print(f"Threads: {facts['threads']} (OpenMP {'on' if facts['openmp'] else 'off'})")
    try:
        print(f"Fashion-MNIST: {_find_data(args.data, download=False)}")
    except FileNotFoundError as exc:
        print(f"Fashion-MNIST: not found\n{exc}")
    return 0
