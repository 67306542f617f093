import torch


class TritonRunnerCore:
    def run(self, dispatch_output, quant_info, hooks=None):
        hidden_states = dispatch_output.hidden_states
        topk_output = dispatch_output.topk_output
        M = hidden_states.shape[0]
        top_k = topk_output.topk_ids.shape[1]
        intermediate_cache1 = torch.empty(
            (M, top_k, quant_info.w13_weight.shape[1]),
            device=hidden_states.device,
            dtype=hidden_states.dtype,
        )
        # (fused_moe gate_up GEMM launch cut)
        if hooks is not None and hooks.after_gate_up is not None:
            hooks.after_gate_up(
                hidden_states,
                intermediate_cache1,
                topk_output.topk_weights,
                topk_output.topk_ids,
            )
        return intermediate_cache1
