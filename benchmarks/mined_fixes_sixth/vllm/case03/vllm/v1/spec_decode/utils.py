# SPDX-License-Identifier: Apache-2.0
import torch

# (benchmark stub: prepare_eagle_input_kernel is a @triton.jit kernel in vLLM.
# This stand-in keeps its launch syntax `kernel[grid](...)` and its effect,
# written with device-side torch ops.)


class _PrepareEagleInputKernel:

    def __getitem__(self, grid):

        def launch(out_ptr, cu_query_lens_ptr, cu_num_tokens_ptr, BLOCK_SIZE):
            batch_size = grid[0]
            starts = cu_num_tokens_ptr[:batch_size]
            lens = cu_num_tokens_ptr[1:batch_size + 1] - starts
            pos = torch.arange(out_ptr.shape[0], device=out_ptr.device)
            req = torch.searchsorted(cu_num_tokens_ptr[1:batch_size + 1],
                                     pos,
                                     right=True)
            offset = pos - starts[req]
            out_ptr.copy_((cu_query_lens_ptr[req] + offset).to(out_ptr.dtype))
            del lens

        return launch


prepare_eagle_input_kernel = _PrepareEagleInputKernel()
