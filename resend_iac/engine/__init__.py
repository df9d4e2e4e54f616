"""The engine: diff(desired, live) -> Plan; apply(Plan); safety checks; saved plans; fingerprints."""

from resend_iac.engine.apply import ApplyError, ApplyResult, apply
from resend_iac.engine.diff import DiffError, diff, read_scope
from resend_iac.engine.fingerprint import fingerprint
from resend_iac.engine.plan import Change, Plan
from resend_iac.engine.planfile import PlanFileError, load_plan, save_plan
from resend_iac.engine.safety import SafetyError, check_safety

__all__ = [
    "ApplyError",
    "ApplyResult",
    "Change",
    "DiffError",
    "Plan",
    "PlanFileError",
    "SafetyError",
    "apply",
    "check_safety",
    "diff",
    "fingerprint",
    "load_plan",
    "read_scope",
    "save_plan",
]
