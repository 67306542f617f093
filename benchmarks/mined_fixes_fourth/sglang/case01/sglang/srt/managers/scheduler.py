from typing import List

from sglang.srt.managers.schedule_batch import Req, ScheduleBatch
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.model_executor.model_runner import ModelRunner
from sglang.srt.models.nemotron_h import NemotronHForCausalLM
from sglang.srt.runtime_context import set_server_args
from sglang.srt.server_args import ServerArgs


class Scheduler:
    def __init__(self, server_args: ServerArgs):
        set_server_args(server_args)
        model = NemotronHForCausalLM()
        self.model_runner = ModelRunner(
            server_args, model, mamba_layers=list(range(model.model.end_layer))
        )
        self.req_to_token_pool = self.model_runner.req_to_token_pool
        self.waiting_queue: List[Req] = []

    def get_new_batch_prefill(self) -> ScheduleBatch:
        new_batch = ScheduleBatch.init_new(self.waiting_queue, self.req_to_token_pool)
        self.waiting_queue = []
        new_batch.prepare_for_extend()
        return new_batch

    def run_batch(self, batch: ScheduleBatch):
        model_worker_batch = batch.get_model_worker_batch()
        forward_batch = ForwardBatch.init_new(model_worker_batch, self.model_runner)
        return self.model_runner.forward_extend(forward_batch)
