"""aiter.dist.device_communicators: the package of AITER's communicators."""
