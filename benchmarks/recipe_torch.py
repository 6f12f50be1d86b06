"""`pydfn train --recipe best` copied in PyTorch, to screen ingredients pydfn does not have.

    python benchmarks/recipe_torch.py [--seed 2] [--threads 1] [--batch-norm | --gelu | --ema 0.9995 | ...]

Before an ingredient goes into pydfn's core (forward, backward, gradient checks,
export, checkpoints), this copy tells whether it lifts the recipe at all. The copy:
the same data and validation split (`pydfn.datasets.train_val_split`, seed 2),
784-1024-512-10 with ReLU and dropout 0.3 after each hidden layer, Adam 1e-3,
batch 128, 90 epochs, the learning rate per batch as `--schedule cosine --warmup 1`
sets it, half of each epoch's training images mirrored. It is not pydfn (other
initial weights, other random draws), so compare its runs with each other; without
an ingredient it lands where pydfn does (README, "The recipe"). Prints the
validation accuracy every 10 epochs, then the final validation and test figures.
Needs torch (`pip install ".[peers]"`); about 25 minutes per run on one thread here.
"""

from __future__ import annotations

import argparse
import math
import time

from typing import Any

import numpy as np

from pydfn import datasets

# torch is imported where it is used: the schedule below is tested without it.


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=2, help="the validation split, weights and draws")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=90)
    parser.add_argument("--batch-norm", action="store_true", help="BatchNorm1d before each hidden ReLU")
    parser.add_argument("--gelu", action="store_true", help="GELU instead of ReLU")
    parser.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                        help="mix each batch with a permutation of itself, weight ~ Beta(ALPHA, ALPHA)")
    parser.add_argument("--erase", type=float, default=0.0, metavar="P",
                        help="random erasing: zero a rectangle (2-25%% of the image) of each image with chance P")
    parser.add_argument("--standardize", action="store_true",
                        help="inputs scaled per pixel by the training set's mean and std (+0.05)")
    parser.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                        help="also keep an exponential moving average of the weights (updated after each "
                             "batch, from the initial weights) and report its figures at the end")
    args = parser.parse_args()
    if not 0 <= args.ema < 1:
        parser.error(f"--ema takes a decay in [0, 1), not {args.ema}")
    return args


def cosine_lr(step: int, per_epoch: int, total: int) -> float:
    """The rate of batch ``step`` (from 0): pydfn's CosineDecay(1e-3, total, warmup_steps=per_epoch)."""
    if step < per_epoch:
        return 1e-3 * step / per_epoch
    return 1e-3 * 0.5 * (1 + math.cos(math.pi * (step - per_epoch) / (total - per_epoch)))


def network(args: argparse.Namespace) -> Any:
    from torch import nn

    layers: list[Any] = []
    for fan_in, fan_out in ((784, 1024), (1024, 512)):
        layers.append(nn.Linear(fan_in, fan_out))
        if args.batch_norm:
            layers.append(nn.BatchNorm1d(fan_out))
        layers += [nn.GELU() if args.gelu else nn.ReLU(), nn.Dropout(0.3)]
    return nn.Sequential(*layers, nn.Linear(512, 10))


def erase(images: Any, chance: float, rng: np.random.Generator) -> Any:
    """A copy of the batch with a random rectangle zeroed in each image drawn with ``chance``."""
    out = images.clone().view(-1, 28, 28)
    for i in np.nonzero(rng.random(len(out)) < chance)[0]:
        area, aspect = rng.uniform(0.02, 0.25) * 784, math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
        height, width = min(28, round(math.sqrt(area * aspect))), min(28, round(math.sqrt(area / aspect)))
        top, left = rng.integers(0, 29 - height), rng.integers(0, 29 - width)
        out[i, top:top + height, left:left + width] = 0
    return out.view(-1, 784)


def main() -> None:
    import torch
    from torch import nn

    args = parse()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    (x, y), (x_test, y_test) = datasets.load_fashion_mnist(datasets.find_fashion_mnist())
    x_train, x_val, y_train, y_val = datasets.train_val_split(datasets.prepare_images(x), y, 0.1, seed=args.seed)
    x_test = datasets.prepare_images(x_test)
    if args.standardize:
        mean, std = x_train.mean(0), x_train.std(0) + 0.05
        x_train, x_val, x_test = ((v - mean) / std for v in (x_train, x_val, x_test))
    xs = [torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for v in (x_train, x_val, x_test)]
    ys = [torch.from_numpy(np.asarray(v, dtype=np.int64)) for v in (y_train, y_val, y_test)]

    net, loss_fn = network(args), nn.CrossEntropyLoss()
    adam = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch = 128
    per_epoch = math.ceil(len(xs[0]) / batch)
    total = per_epoch * args.epochs

    def measure(x: Any, y: Any) -> tuple[float, float]:
        net.eval()
        with torch.no_grad():
            out = net(x)
        net.train()
        return (out.argmax(1) == y).float().mean().item(), loss_fn(out, y).item()

    # The average does not touch training: the live weights' figures are the run without it.
    average = [p.detach().clone() for p in net.parameters()] if args.ema else []
    start, step = time.perf_counter(), 0
    for epoch in range(args.epochs):
        order = torch.from_numpy(rng.permutation(len(xs[0])))
        flip = torch.from_numpy(rng.random(len(xs[0])) < 0.5)
        images = xs[0].clone()
        images[flip] = images[flip].view(-1, 28, 28).flip(2).reshape(-1, 784)
        for b in range(per_epoch):
            rows = order[b * batch:(b + 1) * batch]
            xb, yb = images[rows], ys[0][rows]
            if args.erase:
                xb = erase(xb, args.erase, rng)
            for group in adam.param_groups:
                group["lr"] = cosine_lr(step, per_epoch, total)
            adam.zero_grad()
            if args.mixup:
                weight, partner = float(rng.beta(args.mixup, args.mixup)), torch.from_numpy(rng.permutation(len(xb)))
                out = net(weight * xb + (1 - weight) * xb[partner])
                loss = weight * loss_fn(out, yb) + (1 - weight) * loss_fn(out, yb[partner])
            else:
                loss = loss_fn(net(xb), yb)
            loss.backward()
            adam.step()
            step += 1
            with torch.no_grad():
                for mean, p in zip(average, net.parameters()):
                    mean.mul_(args.ema).add_(p, alpha=1 - args.ema)
        if epoch % 10 == 9:
            acc, loss_value = measure(xs[1], ys[1])
            print(f"epoch {epoch + 1}: val_accuracy {acc:.4f} val_loss {loss_value:.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    (val_acc, val_loss), (test_acc, _) = measure(xs[1], ys[1]), measure(xs[2], ys[2])
    print(f"val_accuracy {val_acc:.4f} val_loss {val_loss:.4f} test_accuracy {test_acc:.4f}")
    if average:
        with torch.no_grad():
            for p, mean in zip(net.parameters(), average):
                p.copy_(mean)
        (val_acc, val_loss), (test_acc, _) = measure(xs[1], ys[1]), measure(xs[2], ys[2])
        print(f"with the average of the weights (decay {args.ema}): "
              f"val_accuracy {val_acc:.4f} val_loss {val_loss:.4f} test_accuracy {test_acc:.4f}")


if __name__ == "__main__":
    main()
