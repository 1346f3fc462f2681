"""posbench's Hydra sweeper (selected by ``configs/train.yaml``; Hydra finds plugins only in the
``hydra_plugins`` namespace package)."""
