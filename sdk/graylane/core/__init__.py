"""The pure evaluation engine: a document and a context go in, an answer comes out.

No I/O, no clock, no dependencies beyond the standard library, mmh3 and google-re2
(`matches` patterns run in linear time). The SDK and the server both evaluate with this
package, so they can never disagree.
"""

from .bucketing import BUCKETS, bucket, threshold
from .document import dump_document, parse_document, parse_ramp
from .evaluation import ErrorCode, Evaluation, Reason
from .explain import Explanation, explain
from .model import Document, Flag, FlagEnvironment, JsonValue, RampPlan, Rollout, Rule, Segment
from .problems import DocumentError, Problem
from .snapshot import Context, Snapshot, compile_document, evaluate, resolve

__all__ = [
    "BUCKETS",
    "Context",
    "Document",
    "DocumentError",
    "ErrorCode",
    "Evaluation",
    "Explanation",
    "Flag",
    "FlagEnvironment",
    "JsonValue",
    "Problem",
    "RampPlan",
    "Reason",
    "Rollout",
    "Rule",
    "Segment",
    "Snapshot",
    "bucket",
    "compile_document",
    "dump_document",
    "evaluate",
    "explain",
    "parse_document",
    "parse_ramp",
    "resolve",
    "threshold",
]
