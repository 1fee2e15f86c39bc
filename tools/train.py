"""Train a model from a config: the ``densevit-train`` command as a script (the code is densevit/tools/train.py)."""

from densevit.tools.train import main

if __name__ == "__main__":
    main()
