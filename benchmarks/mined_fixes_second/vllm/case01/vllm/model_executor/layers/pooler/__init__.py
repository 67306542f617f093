from dataclasses import dataclass


@dataclass
class PoolingParamsUpdate:
    requires_token_ids: bool = False
