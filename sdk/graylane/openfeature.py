"""An OpenFeature provider backed by the Graylane client: local evaluation, live updates.

```python
from openfeature import api
from graylane.openfeature import GraylaneProvider

api.set_provider(GraylaneProvider(url="http://127.0.0.1:8080", sdk_key="gls_..."))
enabled = api.get_client().get_boolean_value("new-checkout", False, EvaluationContext("user-1"))
```

Needs the `openfeature-sdk` package (`pip install 'graylane[openfeature]'`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode as OFErrorCode
from openfeature.exception import ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata
from openfeature.track import TrackingEventDetails

from graylane.client import Change, Client, ClientNotReady
from graylane.core import Evaluation

T = TypeVar("T")


def to_context(context: EvaluationContext | None) -> dict[str, Any]:
    """OpenFeature's context as the plain dict the core reads (`targetingKey` included)."""
    if context is None:
        return {}
    out = dict(context.attributes)
    if context.targeting_key is not None:
        out["targetingKey"] = context.targeting_key
    return out


class GraylaneProvider(AbstractProvider):
    def __init__(
        self,
        client: Client | None = None,
        *,
        url: str | None = None,
        sdk_key: str | None = None,
        ready_timeout: float = 5.0,
        **client_options: Any,
    ) -> None:
        """Give a `client`, or the `url` and `sdk_key` (and any `Client` options) to make one."""
        super().__init__()
        if client is None:
            if url is None or sdk_key is None:
                raise ValueError("give a Client, or url= and sdk_key=")
            client = Client(url, sdk_key, **client_options)
            self._owns_client = True
        else:
            self._owns_client = False
        self.client = client
        self._ready_timeout = ready_timeout
        self._unsubscribe: list[Callable[[], None]] = []

    def get_metadata(self) -> Metadata:
        return Metadata(name="graylane")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        self._unsubscribe = [
            self.client.on_change(self._changed),
            self.client.on_status(self._status),
        ]
        try:
            self.client.wait_ready(self._ready_timeout)
        except ClientNotReady as exc:
            raise ProviderNotReadyError(str(exc)) from exc

    def shutdown(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._owns_client:
            self.client.close()

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        # OpenFeature's `value` is a measurement of the event (an amount, a duration),
        # which is what Graylane's `value` is: one event, its value summed for guards.
        value = None if tracking_event_details is None else tracking_event_details.value
        measured = float(value) if isinstance(value, int | float) else None
        self.client.track(tracking_event_name, to_context(evaluation_context), measured)

    # --- resolution -------------------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._details(flag_key, default_value, evaluation_context, lambda v: type(v) is bool)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._details(
            flag_key, default_value, evaluation_context, lambda v: isinstance(v, str)
        )

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._details(
            flag_key,
            default_value,
            evaluation_context,
            lambda v: isinstance(v, int) and not isinstance(v, bool),
        )

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        details = self._details(
            flag_key,
            default_value,
            evaluation_context,
            lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        )
        details.value = float(details.value)
        return details

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._details(
            flag_key, default_value, evaluation_context, lambda v: isinstance(v, dict | list)
        )

    def _details(
        self,
        key: str,
        default: T,
        context: EvaluationContext | None,
        fits: Callable[[object], bool],
    ) -> FlagResolutionDetails[T]:
        result: Evaluation = self.client.resolve(key, to_context(context))
        if result.error_code is not None:
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=OFErrorCode(str(result.error_code)),
                error_message=result.error_message,
            )
        if not fits(result.value):
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=OFErrorCode.TYPE_MISMATCH,
                error_message=f"flag {key!r} is not of the requested type",
            )
        return FlagResolutionDetails(
            value=cast(T, result.value),
            reason=Reason(str(result.reason)),
            variant=result.variant,
            flag_metadata={} if result.rule is None else {"rule": result.rule},
        )

    # --- events -----------------------------------------------------------------------

    def _changed(self, change: Change) -> None:
        self.emit_provider_configuration_changed(
            ProviderEventDetails(flags_changed=sorted(change.flags))
        )

    def _status(self, status: str, detail: str | None) -> None:
        if status in ("ready", "recovered"):
            self.emit_provider_ready(ProviderEventDetails(message=detail))
        elif status == "stale":
            self.emit_provider_stale(ProviderEventDetails(message=detail))
        elif status == "error":
            self.emit_provider_error(ProviderEventDetails(message=detail))
