from sglang.srt.model_executor.model_runner import ModelRunner


class TpModelWorker:
    def __init__(self, server_args, model):
        self.model_runner = ModelRunner(model, server_args)

    def forward_batch_generation(self, model_worker_batch, forward_batch, skip_sample: bool = False):
        logits_output = self.model_runner.forward(forward_batch)
        if skip_sample:
            next_token_ids = None
            # For prefill-only requests, we still need to compute logprobs even when sampling is skipped
            if any(
                token_ids is not None
                for token_ids in model_worker_batch.token_ids_logprobs
            ):
                self.model_runner.compute_logprobs_only(logits_output, model_worker_batch)
        else:
            next_token_ids = self.model_runner.sample(logits_output, forward_batch)
        return logits_output, next_token_ids
