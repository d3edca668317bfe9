"""The KEDA scaler against hostile callers, from a Python gRPC client (issue #22).

Each case is one attack of the threat model in docs/security.md, played against the real
`leadtime serve` (mutual TLS, two allowed clients) reading a real Prometheus that also holds
another tenant's secret. Each asserts the status code the attack gets, and that its message names
the cap or key that stopped it, and never carries what it tried to read.
"""

import time

import grpc
import pytest

from conftest import LOAD

SECRET = "1234567"
LOAD_Q = 'test_load{namespace="test"}'
TIMEOUT = 15
# HPA behavior without a scale-up rate limit: the guardrails let any target through at once.
UNLIMITED = (
    "scaleUp:\n  stabilizationWindowSeconds: 0\n"
    "  policies:\n  - type: Pods\n    value: 1000000000\n    periodSeconds: 1\n"
)


def meta(query=LOAD_Q, **extra):
    """A valid trigger of namespace `test` reading `query`, with `extra` keys over the defaults."""
    m = {
        "policy": "target-tracking",
        "query": query,
        "targetPerPod": "100",
        "lookback": "10s",
        "step": "1s",
        "minReplicas": "1",
        "maxReplicas": "50",
    }
    m.update(extra)
    return m


def ref(pb, name, metadata, namespace="test"):
    return pb.ScaledObjectRef(name=name, namespace=namespace, scalerMetadata=metadata)


def desired(scaler, stub, name, metadata, namespace="test"):
    """GetMetrics' value; its int and float forms agree."""
    pb = scaler.pb
    response = stub.GetMetrics(
        pb.GetMetricsRequest(scaledObjectRef=ref(pb, name, metadata, namespace)),
        timeout=TIMEOUT,
    )
    assert len(response.metricValues) == 1
    value = response.metricValues[0]
    assert value.metricValue == value.metricValueFloat
    return value.metricValueFloat


def refused(call, code):
    """The error `call` must end in, with `code`; its message."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    error = info.value
    assert error.code() == code, f"{error.code()}: {error.details()}"
    return error.details() or ""


@pytest.fixture
def keda(scaler):
    return scaler.stub("keda")


# --- who may call ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    ["no client certificate", "another CA's certificate for KEDA's name", "plain-text channel"],
)
def test_callers_without_the_cas_certificate_are_refused(scaler, keda, how):
    stub = {
        "no client certificate": lambda: scaler.new_stub(None),
        # Another CA of the same name (CN leadtime-ca), its certificate for KEDA's name.
        "another CA's certificate for KEDA's name": lambda: scaler.new_stub("forged"),
        "plain-text channel": scaler.plain_stub,
    }[how]()
    pb = scaler.pb
    refused(
        lambda: stub.IsActive(ref(pb, "api", meta()), timeout=TIMEOUT), grpc.StatusCode.UNAVAILABLE
    )
    refused(
        lambda: stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(pb, "api", meta())), timeout=TIMEOUT
        ),
        grpc.StatusCode.UNAVAILABLE,
    )
    # KEDA, with the CA's certificate for an allowed name, is served on the same port.
    assert desired(scaler, keda, "api", meta()) == 3


def test_a_certificate_of_the_ca_for_a_name_not_allowed_is_permission_denied(scaler, keda):
    stranger = scaler.new_stub("stranger")
    pb = scaler.pb
    for call in [
        lambda: stranger.IsActive(ref(pb, "api", meta()), timeout=TIMEOUT),
        lambda: stranger.GetMetricSpec(ref(pb, "api", meta()), timeout=TIMEOUT),
        lambda: desired(scaler, stranger, "api", meta()),
        lambda: next(stranger.StreamIsActive(ref(pb, "api", meta()), timeout=TIMEOUT)),
    ]:
        message = refused(call, grpc.StatusCode.PERMISSION_DENIED)
        # The names it showed (its SAN: the CN does not count beside one), and where the
        # allowed ones are set.
        assert "evil.tenant.svc" in message and '"evil"' not in message, message
        assert "allowedClients" in message, message
    assert desired(scaler, keda, "api", meta()) == 3


def test_an_allowed_common_name_does_not_count_beside_a_subject_alternative_name(scaler, keda):
    impostor = scaler.new_stub("san-not-cn")
    message = refused(
        lambda: desired(scaler, impostor, "api", meta()), grpc.StatusCode.PERMISSION_DENIED
    )
    assert "unlisted.tenant.svc" in message and "keda" not in message, message
    assert desired(scaler, keda, "api", meta()) == 3


# --- reading another tenant's metrics ------------------------------------------------------

READERS = [
    ("query", 'secret_revenue{namespace="bank"}'),
    ("query", "secret_revenue"),
    ("query", '{__name__="secret_revenue"}'),
    ("query", 'secret_revenue{namespace=~"test|bank"}'),
    ("query", 'secret_revenue{namespace!="test"}'),
    ("query", 'sum(test_load{namespace="test"}) + on() group_left sum(secret_revenue)'),
    ("query", 'test_load{namespace="test"} or secret_revenue{namespace="bank"}'),
    ("query", 'label_replace(secret_revenue, "namespace", "test", "", "")'),
    (
        "query",
        'label_replace(secret_revenue{namespace="bank"}, "namespace", "test", "namespace", ".*")',
    ),
    ("query", 'max_over_time(secret_revenue{namespace="bank"}[5m])'),
    ("readyTimeQuery", 'secret_revenue{namespace="bank"}'),
    ("replicasQuery", 'secret_revenue{namespace="bank"}'),
]


@pytest.mark.parametrize("key,query", READERS, ids=[q for _, q in READERS])
def test_another_tenants_metric_cannot_be_read(scaler, keda, key, query):
    pb = scaler.pb
    # The reader of the threat model: observe mode, a tiny target and a huge max turn the replica
    # count into the value read.
    reader = meta(mode="observe", targetPerPod="0.001", maxReplicas="2000000000")
    reader[key] = query
    for call in [
        lambda: keda.GetMetricSpec(ref(pb, "reader", reader), timeout=TIMEOUT),
        lambda: desired(scaler, keda, "reader", reader),
        lambda: keda.IsActive(ref(pb, "reader", reader), timeout=TIMEOUT),
        lambda: next(keda.StreamIsActive(ref(pb, "reader", reader), timeout=TIMEOUT)),
    ]:
        message = refused(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert f"`{key}`" in message, message
        assert 'namespace="test"' in message, message
        assert SECRET not in message, message
    assert SECRET not in scaler.metrics()


def test_the_reader_works_on_its_own_namespace(scaler, keda):
    # The same reader on the caller's own series answers the value: what the refusals above
    # keep from the bank's.
    reader = meta(mode="observe", targetPerPod="0.001", maxReplicas="2000000000")
    assert desired(scaler, keda, "own-reader", reader) == LOAD * 1000


def test_a_prometheus_error_does_not_echo_label_sets(scaler, keda):
    # A many-to-many match: Prometheus' error text lists the series it matched, labels and all.
    many = 'test_ready_seconds{namespace="test"} + on() test_ready_seconds{namespace="test"}'
    message = refused(
        lambda: desired(scaler, keda, "many", meta(many)), grpc.StatusCode.UNAVAILABLE
    )
    assert "prometheus query failed" in message, message
    for echoed in ["pod=", 'pod="a"', "many-to-many", "test_ready_seconds{", "__name__"]:
        assert echoed not in message, message
    # The text is in the scaler's log, for the operator.
    assert "many-to-many" in scaler.log_text()


# --- metadata over the caps ----------------------------------------------------------------


def too_many_keys():
    return {f"k{i}": "" for i in range(70)}


def too_many_params():
    return meta(**{f"param.p{i}": "1" for i in range(40)})


def too_much_metadata():
    return {**meta(), **{f"v{i}": "x" * 8000 for i in range(5)}}


METADATA_CAPS = [
    ("too many keys", too_many_keys, "limits.metadataKeys"),
    ("a long key", lambda: {**meta(), "k" * 200: "1"}, "limits.keyBytes"),
    ("a huge value", lambda: meta(behavior="x" * 9000), "limits.valueBytes"),
    ("too much metadata", too_much_metadata, "limits.metadataBytes"),
    ("too many param.*", too_many_params, "limits.params"),
]


@pytest.mark.parametrize("what,metadata,cap", METADATA_CAPS, ids=[c[0] for c in METADATA_CAPS])
def test_metadata_over_a_cap_is_resource_exhausted(scaler, keda, what, metadata, cap):
    pb = scaler.pb
    m = metadata()
    for call in [
        lambda: desired(scaler, keda, "capped", m),
        lambda: keda.GetMetricSpec(ref(pb, "capped", m), timeout=TIMEOUT),
        lambda: keda.IsActive(ref(pb, "capped", m), timeout=TIMEOUT),
    ]:
        message = refused(call, grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert f"`{cap}`" in message, message
    assert desired(scaler, keda, "capped", meta()) == 3


def test_a_100_kb_message_is_refused_by_the_transport(scaler, keda):
    # Under gRPC's usual 4 MiB, over the scaler's 64 KiB `limits.messageBytes`: refused before it
    # is decoded.
    message = refused(
        lambda: desired(scaler, keda, "huge", meta("x" * 100_000)), grpc.StatusCode.OUT_OF_RANGE
    )
    assert "65536" in message, message
    assert desired(scaler, keda, "huge", meta()) == 3


def test_a_100_kb_header_is_refused_by_the_transport(scaler, keda):
    pb = scaler.pb
    request = pb.GetMetricsRequest(scaledObjectRef=ref(pb, "huge", meta()))
    assert desired(scaler, keda, "huge", meta()) == 3
    # HTTP/2 headers are capped by `limits.messageBytes` too: 431 Request Header Fields Too Large.
    message = refused(
        lambda: keda.GetMetrics(request, metadata=[("x-junk", "x" * 100_000)], timeout=TIMEOUT),
        grpc.StatusCode.UNKNOWN,
    )
    assert "431" in message, message
    # The connection and the scaler keep serving.
    assert desired(scaler, keda, "huge", meta()) == 3


# --- names ---------------------------------------------------------------------------------

INJECTED = 'x"}\nleadtime_desired_replicas{namespace="bank",name="api",metric="m"} 999\n#'


def assert_metrics_whole(text):
    """No injected sample line in /metrics, and the scrape ends as OpenMetrics ends."""
    for line in text.splitlines():
        assert not line.startswith('leadtime_desired_replicas{namespace="bank"'), line
        assert not line.startswith("leadtime_workloads 999"), line
        assert not line.endswith(" 999"), line
    assert text.endswith("# EOF\n"), "the scrape stays whole"


@pytest.mark.parametrize(
    "namespace,name",
    [
        ("test", INJECTED),
        ("test", "api\nleadtime_workloads 999"),
        ("Test", "api"),
        ("test\n", "api"),
        ("n" * 64, "api"),
        ("test", "a" * 254),
    ],
    ids=["injected sample line", "newline", "upper case", "namespace newline", "64", "254"],
)
def test_a_name_that_is_not_a_kubernetes_name_is_invalid(scaler, keda, namespace, name):
    pb = scaler.pb
    obj = ref(pb, name, meta(), namespace)
    for call in [
        lambda: keda.GetMetricSpec(obj, timeout=TIMEOUT),
        lambda: keda.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=obj), timeout=TIMEOUT),
        lambda: keda.IsActive(obj, timeout=TIMEOUT),
    ]:
        message = refused(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert "DNS-1123" in message or "over" in message, message
        # Shown escaped, on one line.
        assert "\n" not in message, message
    assert_metrics_whole(scaler.metrics())


def test_a_metric_name_carrying_a_sample_line_is_exported_escaped(scaler, keda):
    assert desired(scaler, keda, "injector", meta(metricName=INJECTED)) == 3
    assert_metrics_whole(scaler.metrics())


# --- workloads and streams -----------------------------------------------------------------


@pytest.fixture(scope="module")
def capped(start_scaler):
    """A scaler with room for 20 workloads, 10 per namespace."""
    return start_scaler("limits:\n  workloads: 20\n  workloadsPerNamespace: 10\n")


def test_workloads_over_the_caps_are_resource_exhausted_and_held_ones_keep_answering(capped):
    keda = capped.stub("keda")
    for i in range(10):
        assert desired(capped, keda, f"w{i}", meta()) == 3
    message = refused(
        lambda: desired(capped, keda, "w10", meta()), grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert "`limits.workloadsPerNamespace`" in message, message
    # Other metadata for a held name is another workload trigger: refused too.
    message = refused(
        lambda: desired(capped, keda, "w0", meta(targetPerPod="50")),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert "`limits.workloadsPerNamespace`" in message, message
    # Another namespace has room until the total cap (queries without selectors read nothing).
    for i in range(10):
        assert desired(capped, keda, f"w{i}", meta("vector(250)"), namespace="other") == 3
    message = refused(
        lambda: desired(capped, keda, "w0", meta("vector(250)"), namespace="third"),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert "`limits.workloads`" in message, message
    # A second allowed caller cannot take room past the caps either.
    second = capped.stub("second")
    message = refused(
        lambda: desired(capped, second, "w0", meta()), grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert "limits.workloads" in message, message
    # The workloads held keep answering, every one.
    for i in range(10):
        assert desired(capped, keda, f"w{i}", meta()) == 3
        assert desired(capped, keda, f"w{i}", meta("vector(250)"), namespace="other") == 3
    assert "leadtime_workloads 20" in capped.metrics()


def test_connections_from_one_address_are_capped(start_scaler):
    few = start_scaler("limits:\n  connectionsPerIp: 3\n")
    held = [few.new_stub("keda") for _ in range(3)]
    for stub in held:
        assert desired(few, stub, "api", meta()) == 3
    # A fourth connection from 127.0.0.1 is closed at once, before its handshake.
    extra = few.new_stub("keda")
    message = refused(lambda: desired(few, extra, "api", meta()), grpc.StatusCode.UNAVAILABLE)
    assert "127.0.0.1" in message, message
    # The connections admitted keep working.
    for stub in held:
        assert desired(few, stub, "api", meta()) == 3


def test_stream_is_active_streams_are_capped(scaler):
    pb = scaler.pb
    # Many streams on one connection: the scaler's `limits.streams` is 4.
    channel = scaler.channel("keda")
    stub = scaler.services.ExternalScalerStub(channel)
    obj = ref(pb, "streamed", meta())
    streams = [stub.StreamIsActive(obj, timeout=60) for _ in range(12)]
    try:
        opened, messages = 0, []
        for stream in streams:
            try:
                assert next(stream).result is True
                opened += 1
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, f"{e.code()}: {e.details()}"
                messages.append(e.details())
        assert (opened, len(messages)) == (4, 8), messages
        for message in messages:
            assert "`limits.streams`" in message, message
        # The allowed client is still answered, on this connection and on another.
        assert desired(scaler, stub, "streamed", meta()) == 3
        assert desired(scaler, scaler.stub("second"), "streamed", meta()) == 3
    finally:
        for stream in streams:
            stream.cancel()
    # Closed streams give their slots back.
    deadline = time.monotonic() + 10
    while True:
        again = stub.StreamIsActive(obj, timeout=60)
        try:
            assert next(again).result is True
            break
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
            assert time.monotonic() < deadline, "stream slots not freed within 10 s"
            time.sleep(0.2)
        finally:
            again.cancel()


# --- steering ------------------------------------------------------------------------------


def test_a_second_caller_cannot_steer_the_first_callers_workload(scaler, keda):
    pb = scaler.pb
    second = scaler.stub("second")
    victim = meta()
    assert desired(scaler, keda, "steered", victim) == 3
    before = scaler.metrics()
    workloads = int(
        next(
            line for line in before.splitlines() if line.startswith("leadtime_workloads ")
        ).split()[1]
    )
    # The same namespace, name and metadata from the second allowed caller: a state of its own.
    assert desired(scaler, second, "steered", victim) == 3
    after = scaler.metrics()
    assert f"leadtime_workloads {workloads + 1}" in after, after
    # The second caller names the workload with its own metadata, again and again.
    steer = meta("vector(4e9)", maxReplicas="2147483647", minReplicas="0", behavior=UNLIMITED)
    zero = meta("vector(0)", minReplicas="0")
    for _ in range(3):
        # The second caller gets answers for its own triggers...
        assert desired(scaler, second, "steered", steer) == 4e7
        assert second.IsActive(ref(pb, "steered", zero), timeout=TIMEOUT).result is False
        # ...and KEDA's are untouched.
        assert desired(scaler, keda, "steered", victim) == 3
        assert keda.IsActive(ref(pb, "steered", victim), timeout=TIMEOUT).result is True


@pytest.mark.parametrize(
    "extra",
    [
        {"behavior": UNLIMITED},
        {"behavior": UNLIMITED, "policy": "hpa"},
        {"mode": "observe", "targetPerPod": "0.001"},
        {"replicasQuery": "vector(4e9)"},
        {},
    ],
    ids=["decide", "hpa", "observe", "replicas", "rate-limited"],
)
def test_a_huge_load_never_answers_above_max_replicas(scaler, keda, extra):
    pb = scaler.pb
    m = meta("vector(4e9)", maxReplicas="50", **extra)
    answers = [desired(scaler, keda, "huge-load", m) for _ in range(3)]
    assert all(1 <= a <= 50 for a in answers), answers
    if extra.get("behavior") or extra.get("mode") or extra.get("replicasQuery"):
        assert answers[-1] == 50, answers
    assert keda.IsActive(ref(pb, "huge-load", m), timeout=TIMEOUT).result is True
    # A huge negative load: never under minReplicas.
    m = meta("vector(-4e9)", minReplicas="2", **extra)
    answers = [desired(scaler, keda, "tiny-load", m) for _ in range(3)]
    assert all(2 <= a <= 50 for a in answers), answers


# --- policy files --------------------------------------------------------------------------


def test_a_policy_from_policy_dir_loads(scaler, keda):
    assert desired(scaler, keda, "own-policy", meta(policy="mine.wat")) == 3


@pytest.mark.parametrize(
    "path,why",
    [
        ("../outside.wat", "outside policyDir"),
        ("link.wat", "outside policyDir"),
        ("/etc/passwd.wat", "outside policyDir"),
        ("sub/../../outside.wat", "outside policyDir"),
        ("missing.wat", "cannot be opened"),
        ("secret.wat", "does not load"),
    ],
)
def test_a_policy_file_outside_policy_dir_is_refused(scaler, keda, path, why):
    pb = scaler.pb
    m = meta(policy=path)
    for call in [
        lambda: desired(scaler, keda, "policy-probe", m),
        lambda: keda.GetMetricSpec(ref(pb, "policy-probe", m), timeout=TIMEOUT),
    ]:
        message = refused(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert "`policy`" in message and why in message, message
        assert "hunter2" not in message and "(module" not in message, message


def test_a_policy_path_tells_nothing_of_the_file_system(scaler, keda, policy_dir):
    # Paths outside policyDir to a file, a directory, nothing: one answer, whatever exists there.
    up = "../" * 12
    probes = [
        f"{up}etc/passwd/x.wat",
        f"{up}etc/x.wat",
        f"{up}nonexistent/x.wat",
        "/etc/passwd/x.wat",
        "/nonexistent/x.wat",
    ]
    answers = set()
    for path in probes:
        message = refused(
            lambda path=path: desired(scaler, keda, "policy-probe", meta(policy=path)),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        answers.add(message.replace(path, "<path>"))
    assert answers == {"scalerMetadata `policy`: <path> is outside policyDir"}, answers
    # Nor where policyDir is.
    message = refused(
        lambda: desired(scaler, keda, "policy-probe", meta(policy="missing.wat")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert str(policy_dir) not in message and "pytest" not in message, message


@pytest.fixture(scope="module")
def no_policy_dir(start_scaler):
    return start_scaler()


@pytest.mark.parametrize("path", ["/etc/passwd.wat", "../outside.wat", "mine.wat", "x.wasm"])
def test_without_policy_dir_no_file_is_read(no_policy_dir, path):
    keda = no_policy_dir.stub("keda")
    message = refused(
        lambda: desired(no_policy_dir, keda, "policy-probe", meta(policy=path)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "`policy`" in message and "policyDir" in message, message
    assert "root:" not in message, message
