"""Training: the plugin's trainer classes, checkpoints, one run (``runner``), several
processes (``distributed``), and recommendations from a trained checkpoint."""
