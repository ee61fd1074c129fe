"""RENAS: reinforced evolutionary neural architecture search.

Evolutionary search whose mutations are chosen by a reinforcement-learned controller
(Chen et al., "RENAS: Reinforced Evolutionary Neural Architecture Search", CVPR 2019),
with the baselines it must beat, on Hydra configs, Lightning training and W&B logging.
"""

__version__ = "0.3.0"

from renas import config as _config  # noqa: E402  (the --help template's resolver)
from renas import schema as _schema  # noqa: E402  (the config schemas, in Hydra's ConfigStore before any composition)

_schema.register()
_config.register_resolvers()
