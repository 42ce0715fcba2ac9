"""The request metrics: plain tallies exported through a collector, checked against
prometheus_client's own Counter and Histogram fed the same observations (the oracle)."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from provisor.server.observability import LATENCY_BUCKETS, Metrics, route_label

Observation = tuple[str, str, str, float]

observations = st.lists(
    st.tuples(
        st.sampled_from(["GET", "POST", "PATCH"]),
        st.sampled_from(["Users", "Users/{id}", "Groups"]),
        st.sampled_from(["200", "201", "404"]),
        # bucket bounds themselves (a bound counts as "<="), values between, and beyond the last
        st.one_of(st.sampled_from(LATENCY_BUCKETS), st.floats(min_value=0, max_value=5, allow_nan=False)),
    ),
    max_size=40,
)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            if s.name.endswith("_created") or not s.name.startswith("provisor_http"):
                continue
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _oracle(seen: list[Observation]) -> CollectorRegistry:
    registry = CollectorRegistry()
    requests = Counter("provisor_http_requests_total", "x", ["method", "route", "status"], registry=registry)
    latency = Histogram(
        "provisor_http_request_duration_seconds", "x", ["route"], registry=registry, buckets=LATENCY_BUCKETS
    )
    for method, route, status, seconds in seen:
        requests.labels(method, route, status).inc()
        latency.labels(route).observe(seconds)
    return registry


@given(observations)
def test_the_exported_samples_equal_prometheus_clients_own(seen: list[Observation]) -> None:
    metrics = Metrics()
    for method, route, status, seconds in seen:
        metrics.observe(method, route, status, seconds)
    got, want = _samples(metrics.registry), _samples(_oracle(seen))
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert abs(got[key] - value) <= 1e-9 * max(1.0, abs(value)), key


def test_nothing_observed_exports_no_request_samples() -> None:
    assert _samples(Metrics().registry) == {}


def test_route_labels_have_low_cardinality() -> None:
    base = "/scim/v2"
    assert route_label("/scim/v2/Users", base) == "Users"
    assert route_label("/scim/v2/Users/2819c223", base) == "Users/{id}"
    assert route_label("/scim/v2/Users/.search", base) == "Users/.search"
    assert route_label("/scim/v2", base) == "root"
    assert route_label("/healthz", base) == "/healthz"
    assert route_label("/readyz", base) == "/readyz"
    assert route_label("/anything/else?x", base) == "other"


def test_a_path_under_the_base_that_names_no_endpoint_is_other() -> None:
    """Paths come from anyone, before authentication, and a label is a series kept for good:
    only what the SCIM app routes gets a label of its own (audit: one series per unknown path)."""
    base = "/scim/v2"
    for path in ("/scim/v2/x" + "A" * 20_000, "/scim/v2/nope", "/scim/v2/nope/1", "/scim/v2/nope/.search"):
        assert route_label(path, base) == "other", path
    assert route_label("/scim/v2/Users/1/extra", base) == "other"
    assert route_label("/scim/v2foo", base) == "other"
    # routed in any case, labelled in one spelling
    assert route_label("/scim/v2/users", base) == "Users"
    assert route_label("/scim/v2/GROUPS/7", base) == "Groups/{id}"
    assert route_label("/scim/v2/serviceproviderconfig", base) == "ServiceProviderConfig"
    assert route_label("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", base) == "Schemas/{id}"
    assert route_label("/scim/v2/Bulk", base) == "Bulk"
    assert route_label("/scim/v2/.search", base) == ".search"


def test_many_unknown_paths_keep_the_metrics_small(live) -> None:
    def series() -> list[str]:
        text = httpx.get(f"{live.root}/metrics").text
        return [line for line in text.splitlines() if line.startswith("provisor_http_requests_total")]

    with httpx.Client(base_url=live.base) as stranger:
        stranger.get("/unknown-warmup")  # the one "other" series exists
        series()  # and so does the scrape's own
        before, size = series(), len(httpx.get(f"{live.root}/metrics").content)
        for i in range(50):
            assert stranger.get(f"/x{i}" + "A" * 2000).status_code in (401, 404)
    after = series()
    assert len(after) == len(before)  # the counts changed, the series did not
    assert len(httpx.get(f"{live.root}/metrics").content) < size + 1000
    assert not any("AAAA" in line for line in after)
