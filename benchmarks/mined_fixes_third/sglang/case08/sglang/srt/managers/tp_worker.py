from sglang.srt.managers.schedule_batch import ModelWorkerBatch
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.model_executor.model_runner import ModelRunner


class TpModelWorker:
    def __init__(self, model_runner: ModelRunner):
        self.model_runner = model_runner

    def forward_batch_generation(self, model_worker_batch: ModelWorkerBatch):
        forward_batch = ForwardBatch.init_new(model_worker_batch, self.model_runner)
        logits_output, can_run_cuda_graph = self.model_runner.forward(forward_batch)
        return logits_output, can_run_cuda_graph
