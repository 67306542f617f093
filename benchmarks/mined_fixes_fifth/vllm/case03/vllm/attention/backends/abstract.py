# SPDX-License-Identifier: Apache-2.0
# Cut down: only the names flashinfer.py imports.
from abc import ABC


class AttentionType:
    DECODER = "decoder"
    ENCODER = "encoder"
    ENCODER_ONLY = "encoder_only"
    ENCODER_DECODER = "encoder_decoder"


class AttentionBackend(ABC):
    """Abstract class for attention backends."""

    accept_output_buffer: bool = False


class AttentionImpl(ABC):
    pass
