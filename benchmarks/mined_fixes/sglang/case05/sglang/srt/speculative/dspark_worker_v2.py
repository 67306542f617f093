from sglang.srt.managers.tp_worker import TpModelWorker
from sglang.srt.speculative.dspark_components.dspark_kv_inject import DSparkKVInjector


class DSparkWorkerV2:
    def __init__(self, server_args, target_worker: TpModelWorker, draft_model_runner):
        self.server_args = server_args
        self.target_worker = target_worker
        self.model_runner = target_worker.model_runner
        self.draft_model_runner = draft_model_runner
        self._kv_injector = DSparkKVInjector(
            self.model_runner, draft_model_runner, server_args.speculative_swa_ring_size
        )

    def forward_batch_generation(self, batch, on_publish=None):
        placement = self._kv_injector.place_prefill(batch)
        batch_output = self.target_worker.forward_batch_generation(batch)
        self.draft_model_runner.inject(placement, batch_output.logits_output.hidden_states)
        return batch_output
