from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.state_capturer.routed_experts import get_global_experts_capturer


class ModelRunner:
    def __init__(self, model, server_args, device: str = "cuda"):
        self.model = model
        self.server_args = server_args
        self.device = device
        self.graph_runner = None

    def _forward_raw(self, forward_batch: ForwardBatch):
        return self.model.forward(forward_batch.input_ids, forward_batch)

    def forward(self, forward_batch: ForwardBatch):
        output = self._forward_raw(forward_batch)

        no_copy_to_cpu = not self.server_args.disable_overlap_schedule
        if (experts_capturer := get_global_experts_capturer()) is not None:
            output.routed_experts_output = experts_capturer.on_forward_end(
                forward_batch=forward_batch,
                can_run_graph=output.can_run_graph,
                cuda_graph_batch=getattr(self.graph_runner, "bs", None),
                no_copy_to_cpu=no_copy_to_cpu,
            )
        return output
