"""The settings property-based tests run with: many examples of the pure layers, few end to end.

``make test`` runs each property of the pure layers on a fixed, derandomised set of examples (the
same examples on every machine and every run, so a failure in CI is a failure on a laptop), with no
deadline (the machine is shared; timing is never a test's business) and no example database (a
clean clone behaves as CI does). Two environment variables widen the search:

- ``EVENT_INGEST_PROPERTY_SCALE``: a factor on every property's number of examples (e.g. ``20``);
- ``EVENT_INGEST_PROPERTY_RANDOM=1``: fresh random examples on each run instead of the fixed set.

Use the settings as decorators: ``@pure(500)`` above ``@given(...)`` for a pure-layer property,
``@end_to_end(10)`` for one that goes through the real servers.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SCALE = float(os.environ.get("EVENT_INGEST_PROPERTY_SCALE") or 1)
_RANDOM = os.environ.get("EVENT_INGEST_PROPERTY_RANDOM") == "1"

#: Hostile inputs are big by design (deep nesting, keys at S3's limit, long lines): the health
#: checks that flag big or slow draws would reject exactly the examples these tests are for.
_SUPPRESSED = (HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example)

settings.register_profile(
    "event_ingest",
    deadline=None,
    derandomize=not _RANDOM,
    database=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)
BASE = settings.get_profile("event_ingest")


def pure(examples: int) -> settings:
    """Settings for a property of a pure layer: ``examples`` of them (times the scale)."""
    return settings(BASE, max_examples=max(1, round(examples * _SCALE)))


def end_to_end(examples: int) -> settings:
    """Settings for a property run through the real servers: few examples, each costly.

    Function-scoped fixtures (a fresh bucket, a data directory) are shared by the examples of one
    test: such a test must make each example independent of the ones before.
    """
    return settings(
        BASE,
        max_examples=max(1, round(examples * _SCALE)),
        suppress_health_check=(*_SUPPRESSED, HealthCheck.function_scoped_fixture),
    )
