"""posbench: positional-encoding ablations for Transformers."""

__version__ = "0.1.0"


def _folder(*, _root_) -> str:
    """``${posbench.folder:}`` in ``configs/train.yaml``: a run's folder name from its composed
    configuration (``posbench.labels.folder_name``). Registered on import, so that every process
    that resolves Hydra's folders (launcher workers too) has it; the work is imported when used."""
    from posbench.config import GROUPS, normalise
    from posbench.labels import folder_name
    from posbench.sweep import own_config

    if not all(group in _root_ for group in GROUPS):  # `--cfg hydra --resolve` shows Hydra's node alone
        return "<label>_<task>_<model>_s<seed>"
    return folder_name(normalise(own_config(_root_)))


def _register() -> None:
    import warnings

    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("posbench.folder"):
        OmegaConf.register_new_resolver("posbench.folder", _folder)
    # posbench's settings for the sweep extra's launchers (configs/hydra/launcher/joblib.yaml...)
    # extend the plugins' schemas of the same name: Hydra 1.3 merges them, with a warning that this
    # matching is deprecated (hydra-core is kept below 1.4 in pyproject.toml). Silenced here, on
    # import, because launcher workers compose the configuration too.
    warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema")


_register()
