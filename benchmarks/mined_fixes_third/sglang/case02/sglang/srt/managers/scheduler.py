from sglang.srt.managers.overlap_utils import FutureMap, resolve_forward_inputs
from sglang.srt.managers.schedule_batch import ScheduleBatch
from sglang.srt.managers.tp_worker import TpModelWorker


class Scheduler:
    def __init__(self, tp_worker: TpModelWorker, future_map: FutureMap):
        self.tp_worker = tp_worker
        self.future_map = future_map

    def run_batch(self, batch: ScheduleBatch):
        resolve_forward_inputs(batch, self.future_map)
        model_worker_batch = batch.get_model_worker_batch()
        return self.tp_worker.forward_batch_generation(model_worker_batch)
