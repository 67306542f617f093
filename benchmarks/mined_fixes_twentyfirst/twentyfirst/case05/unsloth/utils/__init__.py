# Copyright 2023-present Daniel Han-Chen, Michael Han-Chen & the Unsloth team. All rights reserved.
#
# This program is free software: you can redistribute it and/or modify
# it under the terms of the GNU Lesser General Public License as published by
# the Free Software Foundation, either version 3 of the License, or
# (at your option) any later version.
#
# This program is distributed in the hope that it will be useful,
# but WITHOUT ANY WARRANTY; without even the implied warranty of
# MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
# GNU General Public License for more details.
#
# You should have received a copy of the GNU Lesser General Public License
# along with this program.  If not, see <https://www.gnu.org/licenses/>.

from .packing import (
    configure_padding_free,
    configure_sample_packing,
    enable_padding_free_metadata,
    enable_sample_packing,
    mark_allow_overlength,
)
from .attention_dispatch import (
    AttentionConfig,
    AttentionContext,
    FLASH_DENSE,
    FLASH_VARLEN,
    SDPA,
    XFORMERS,
    run_attention,
    select_attention_backend,
)

__all__ = [
    "configure_sample_packing",
    "configure_padding_free",
    "enable_sample_packing",
    "enable_padding_free_metadata",
    "mark_allow_overlength",
    "AttentionConfig",
    "AttentionContext",
    "FLASH_VARLEN",
    "FLASH_DENSE",
    "XFORMERS",
    "SDPA",
    "run_attention",
    "select_attention_backend",
]
