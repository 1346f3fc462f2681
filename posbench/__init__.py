"""posbench: positional-encoding ablations for Transformers."""

__version__ = "0.1.0"


def _folder(*, _root_) -> str:
    """``${posbench.folder:}`` in ``configs/train.yaml``: a run's folder name from its composed
    configuration (``posbench.labels.folder_name``). Registered on import, so that every process
    that resolves Hydra's folders (launcher workers too) has it; the work is imported when used."""
    from omegaconf import OmegaConf

    from posbench.config import normalise
    from posbench.labels import folder_name

    own = OmegaConf.masked_copy(_root_, [key for key in _root_ if key != "hydra"])
    return folder_name(normalise(OmegaConf.to_container(own, resolve=True)))


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
