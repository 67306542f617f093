from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class ModelRunner:
    def __init__(self, model, device: str = "cuda", model_is_mrope: bool = True):
        self.model = model
        self.device = device
        self.model_is_mrope = model_is_mrope

    def forward(self, forward_batch: ForwardBatch):
        return self.model.forward(
            forward_batch.input_ids, forward_batch.mrope_positions, forward_batch
        )

