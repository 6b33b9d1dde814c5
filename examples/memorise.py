"""Seed 001's memorisation exercise: can the seeds' network learn 100 images of pure noise?

100 images of uniform random pixels get the labels of the first 100 MNIST training images; the seeds'
784-32-32-10 sigmoid network trains per sample until it classifies all 100 correctly. Prints the epochs
it took, per learning rate.

    python examples/memorise.py [--lr 0.003 0.03 0.3] [--max-epochs 5000] [--seed 0]
"""

import argparse

import numpy as np

import xpnet
from xpnet import datasets


def epochs_to_memorise(lr, max_epochs, seed):
    labels = datasets.load_mnist().y_train[:100]
    X = np.random.default_rng(seed).random((100, 784))
    net = xpnet.MLP("784-32-32-10", activation="sigmoid", init="normal-max", seed=seed, dtype="float64")
    for epoch in range(1, max_epochs + 1):
        net.fit(X, labels, epochs=1, lr=lr, batch_size=1, shuffle=False, progress=False)
        if (net.predict(X) == labels).all():
            return epoch
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, nargs="+", default=[0.003, 0.03, 0.3])
    parser.add_argument("--max-epochs", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for lr in args.lr:
        epochs = epochs_to_memorise(lr, args.max_epochs, args.seed)
        result = f"{epochs} epochs" if epochs else f"not within {args.max_epochs} epochs"
        print(f"lr {lr:g}: 100% training accuracy on 100 noise images after {result}", flush=True)


if __name__ == "__main__":
    main()
