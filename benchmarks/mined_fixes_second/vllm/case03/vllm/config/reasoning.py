class ReasoningConfig:
    reasoning_start_token_ids: list[int] | None = None
    reasoning_end_token_ids: list[int] | None = None
