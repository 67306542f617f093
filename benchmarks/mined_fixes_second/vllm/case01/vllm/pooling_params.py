from vllm.tasks import PoolingTask


class PoolingParams:
    def __init__(
        self,
        task: PoolingTask | None = None,
        step_tag_id: int | None = None,
        returned_token_ids: list[int] | None = None,
        requires_token_ids: bool = False,
    ):
        self.task = task
        self.step_tag_id = step_tag_id
        self.returned_token_ids = returned_token_ids
        self.requires_token_ids = requires_token_ids
