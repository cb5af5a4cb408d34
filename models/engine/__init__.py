"""The paged-KV engine: sequences, block manager, scheduler, model runner, sampler and the LLM API."""
