# SPDX-License-Identifier: Apache-2.0
# (benchmark cut: placeholder fallback when Triton is missing)
import triton
import triton.language as tl

__all__ = ["triton", "tl"]
