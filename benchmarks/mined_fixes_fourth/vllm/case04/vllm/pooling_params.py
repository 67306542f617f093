# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to the fields the input batch reads.
from dataclasses import dataclass


@dataclass
class PoolingParams:
    task: str | None = None
    requires_token_ids: bool = False
