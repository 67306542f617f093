from __future__ import annotations

from typing import Any

from sglang.srt.lora.lora_moe_runners import LoRAHooks


class MoeRunner:
    def __init__(self, runner_core, lora_enabled: bool = False):
        self.runner_core = runner_core
        self.lora_enabled = lora_enabled

    def run(self, dispatch_output, quant_info, lora_info=None):
        def _maybe_build_lora_hooks(_runner_input: Any) -> LoRAHooks:
            from sglang.srt.lora.lora_moe_runners import build_lora_hooks

            hidden_states, topk_ids = (
                _runner_input.hidden_states,
                _runner_input.topk_output.topk_ids,
            )
            if self.lora_enabled and lora_info is not None:
                return build_lora_hooks(
                    hidden_states,
                    lora_info,
                    topk_ids,
                )
            return None

        hooks = _maybe_build_lora_hooks(dispatch_output)
        return self.runner_core.run(dispatch_output, quant_info, hooks=hooks)
