"""gateway.transport.admission: the token bucket on accepted connections."""

from gateway.transport.admission import AcceptBudget


def test_a_burst_is_taken_then_accepting_pauses_for_the_refill():
    budget = AcceptBudget(rate=10.0, burst=3)
    assert [budget.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.take(0.0) == 0.1  # one connection over: a tenth of a second at 10/s
    assert budget.take(0.1) == 0.1  # the refill paid that one back, this one is over again


def test_the_bucket_refills_up_to_the_burst_only():
    budget = AcceptBudget(rate=10.0, burst=2)
    budget.take(0.0)
    assert [budget.take(100.0) for _ in range(2)] == [0.0, 0.0]
    assert budget.take(100.0) > 0.0


def test_a_steady_rate_below_the_limit_never_pauses():
    budget = AcceptBudget(rate=100.0, burst=1)
    assert all(budget.take(i * 0.011) == 0.0 for i in range(1000))
