class SpecInput:
    topk: int = 1
    draft_token_num: int = 1
