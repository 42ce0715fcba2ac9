"""The command line: the composition root for processes."""
