"""The op contracts written in MLX: functions on mx.array with the contract's arguments, used by the
torch-facing kernels (anyaccel_mlx.kernels) and by the torch.compile backend (anyaccel_mlx.backend).

They are functional: an op the contract defines as in place (add_rms_norm, write_kv) returns the new values
of the arrays it would mutate, and the caller stores them.
"""
