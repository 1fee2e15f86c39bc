"""The command-line tools' code: the installed commands (``densevit-train``, ``densevit-test``, ``densevit-infer``;
the scripts of the same names in the repository's tools/ run them), and the bodies of tools/benchmark.py and
tools/export.py, kept out of the scripts so that every script parses its arguments (and answers ``--help``) before
importing torch."""
