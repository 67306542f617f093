# SPDX-License-Identifier: Apache-2.0
from vllm.v1.sample.ops.topk_topp_sampler import random_sample  # noqa

# (benchmark cut: is_spec_decode_supported)
