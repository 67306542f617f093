import torch


class BatchedPenalizerOrchestrator:
    def __init__(self, vocab_size: int, batch, penalizers):
        self.vocab_size = vocab_size
        self.penalizers = {p: p(self) for p in penalizers}
        self.is_required = any(p.is_required() for p in self.penalizers.values())

    def cumulate_output_tokens(self, output_ids: torch.Tensor):
        """
        Feed the output tokens to the penalizers.

        Args:
            output_ids (torch.Tensor): The output tokens.
        """
        for penalizer in self.penalizers.values():
            penalizer.cumulate_output_tokens(output_ids=output_ids)
