from sglang.srt.managers.scheduler_output_processor_mixin import (
    SchedulerOutputProcessorMixin,
)
from sglang.srt.managers.tp_worker import TpModelWorker


class Scheduler(SchedulerOutputProcessorMixin):
    def __init__(self, server_args, model):
        self.tp_worker = TpModelWorker(server_args, model)

    def run_batch(self, batch):
        model_worker_batch = batch.get_model_worker_batch()
        forward_batch = batch.get_forward_batch()
        return self.tp_worker.forward_batch_generation(model_worker_batch, forward_batch)

    def event_loop_normal(self):
        while True:
            batch = self.get_next_batch_to_run()
            result = self.run_batch(batch)
            self.process_batch_result_decode(batch, result)
