"""The conformance kit: every kernel against an independent oracle (`anyaccel check`, pytest plugin)."""

from .case import Case, Tolerance
from .runner import CaseResult, KernelReport, check, kernels_to_check, run_case

__all__ = ["Case", "CaseResult", "KernelReport", "Tolerance", "check", "kernels_to_check", "run_case"]
