# SPDX-License-Identifier: LGPL-3.0-or-later
from .base_descriptor import (
    BaseDescriptor,
)
from .descriptor import (
    DescriptorBlock,
    make_default_type_embedding,
)
from .dpa1 import (
    DescrptBlockSeAtten,
    DescrptDPA1,
)
from .dpa2 import (
    DescrptDPA2,
)
from .env_mat import (
    prod_env_mat,
)
from .gaussian_lcc import (
    DescrptGaussianLcc,
)
from .hybrid import (
    DescrptBlockHybrid,
    DescrptHybrid,
)
from .repformers import (
    DescrptBlockRepformers,
)
from .se_a import (
    DescrptBlockSeA,
    DescrptSeA,
)
from .se_r import (
    DescrptSeR,
)

__all__ = [
    "BaseDescriptor",
    "DescriptorBlock",
    "make_default_type_embedding",
    "DescrptBlockSeA",
    "DescrptBlockSeAtten",
    "DescrptSeA",
    "DescrptSeR",
    "DescrptDPA1",
    "DescrptDPA2",
    "DescrptHybrid",
    "prod_env_mat",
    "DescrptGaussianLcc",
    "DescrptBlockHybrid",
    "DescrptBlockRepformers",
]
