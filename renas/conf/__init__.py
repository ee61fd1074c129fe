"""The config tree shipped with the package (read by Hydra as ``pkg://renas.conf``)."""
