from sglang.srt.managers.schedule_batch import ModelWorkerBatch
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.model_executor.model_runner import ModelRunner
from sglang.srt.server_args import ServerArgs


class TpModelWorker:
    """A tensor parallel model worker."""

    def __init__(self, server_args: ServerArgs, gpu_id: int, model_config):
        self.server_args = server_args
        self.gpu_id = gpu_id
        self.model_runner = ModelRunner(
            server_args=server_args, gpu_id=gpu_id, model_config=model_config
        )
        self.device = self.model_runner.device

    def forward_batch_generation(self, model_worker_batch: ModelWorkerBatch):
        forward_batch = ForwardBatch.init_new(model_worker_batch, self.model_runner)
        logits_output = self.model_runner.forward(forward_batch)
        return logits_output
