"""Evaluate a checkpoint: the ``densevit-test`` command as a script (the code is densevit/tools/test.py)."""

from densevit.tools.test import main

if __name__ == "__main__":
    main()
