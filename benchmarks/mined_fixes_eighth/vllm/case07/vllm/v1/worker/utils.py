# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# (benchmark cut: vllm/v1/worker/utils.py; sanity_check_mm_encoder_outputs
# only validates the encoder outputs, scatter_mm_placeholders scatters them
# into a placeholder tensor)


def sanity_check_mm_encoder_outputs(mm_embeddings, expected_num_items: int):
    ...


def scatter_mm_placeholders(embeds, is_embed):
    ...
