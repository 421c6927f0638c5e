"""Runnable experiments: ``python -m jdec.experiments.<name> --workdir DIR``."""
