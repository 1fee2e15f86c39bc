"""Run a model on images or a video: the ``densevit-infer`` command as a script (code: densevit/tools/infer.py)."""

from densevit.tools.infer import main

if __name__ == "__main__":
    main()
