"""The command-line tools installed as commands (``densevit-train``, ``densevit-test``, ``densevit-infer``); the
scripts of the same names in the repository's tools/ run them."""
