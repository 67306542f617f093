class RadixCache:
    def __init__(self, req_to_token_pool, token_to_kv_pool_allocator, page_size: int):
        self.req_to_token_pool = req_to_token_pool
        self.token_to_kv_pool_allocator = token_to_kv_pool_allocator
        self.page_size = page_size
