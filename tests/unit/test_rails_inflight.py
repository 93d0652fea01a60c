"""The in-flight ledger: commits stop at the lowest unsettled offset; retries come due in order."""

from __future__ import annotations

from connectors.rails.inflight import InFlight, Pending

T = "invoices.stripe"


def pending(offset: int, partition: int = 0) -> Pending:
    return Pending(T, partition, offset, b"")


def settle(entry: Pending) -> None:
    entry.resolved = True


def test_nothing_read_means_nothing_to_commit() -> None:
    assert InFlight().commit_points() == {}


def test_commit_point_stops_at_the_lowest_unsettled_offset() -> None:
    ledger = InFlight()
    entries = [pending(o) for o in range(10, 15)]
    for e in entries:
        ledger.add(e)
    for e in (entries[0], entries[2], entries[3], entries[4]):
        settle(e)
    ledger.settle_ready()
    assert ledger.commit_points() == {(T, 0): 11}
    settle(entries[1])
    ledger.settle_ready()
    assert ledger.commit_points() == {(T, 0): 15}
    assert len(ledger) == 0


def test_resolved_but_unacknowledged_is_not_settled() -> None:
    ledger = InFlight()
    entry = pending(3)
    ledger.add(entry)
    entry.resolved, entry.unacked = True, 1
    ledger.settle_ready()
    assert ledger.commit_points() == {(T, 0): 3}
    entry.unacked = 0
    ledger.settle_ready()
    assert ledger.commit_points() == {(T, 0): 4}


def test_partitions_commit_independently() -> None:
    ledger = InFlight()
    a, b = pending(5, partition=0), pending(7, partition=1)
    ledger.add(a)
    ledger.add(b)
    settle(b)
    ledger.settle_ready()
    assert ledger.commit_points() == {(T, 0): 5, (T, 1): 8}


def test_retries_come_due_earliest_first_and_only_when_due() -> None:
    ledger = InFlight()
    late, early = pending(1), pending(2)
    ledger.add(late)
    ledger.add(early)
    ledger.retry_at(late, 20.0)
    ledger.retry_at(early, 10.0)
    assert ledger.next_due() == 10.0
    assert ledger.pop_due(9.9) is None
    assert ledger.pop_due(10.0) is early
    assert ledger.pop_due(15.0) is None
    assert ledger.pop_due(25.0) is late
    assert ledger.waiting == 0


def test_forgetting_a_revoked_partition_drops_its_invoices_and_their_retries() -> None:
    ledger = InFlight()
    mine, theirs = pending(1, partition=0), pending(1, partition=1)
    ledger.add(mine)
    ledger.add(theirs)
    ledger.retry_at(theirs, 1.0)
    assert ledger.forget({(T, 1)}) == 1
    assert ledger.pop_due(5.0) is None
    assert ledger.commit_points() == {(T, 0): 1}


def test_due_retries_go_before_fresh_invoices_which_go_in_the_order_read() -> None:
    ledger = InFlight()
    retried, first, second = pending(1), pending(2), pending(3)
    for e in (retried, first, second):
        ledger.add(e)
    ledger.retry_at(retried, 10.0)
    ledger.queue(first)
    ledger.queue(second)
    assert ledger.ready == 2 and ledger.has_work(0.0)
    assert ledger.take(0.0) is first
    assert ledger.take(10.0) is retried
    assert ledger.take(10.0) is second
    assert ledger.take(10.0) is None and not ledger.has_work(10.0)


def test_a_retry_not_yet_due_is_not_work() -> None:
    ledger = InFlight()
    entry = pending(1)
    ledger.add(entry)
    ledger.retry_at(entry, 5.0)
    assert not ledger.has_work(4.9)
    assert ledger.has_work(5.0)


def test_forgetting_a_partition_drops_its_fresh_invoices_too() -> None:
    ledger = InFlight()
    mine, theirs = pending(1, partition=0), pending(1, partition=1)
    for e in (mine, theirs):
        ledger.add(e)
        ledger.queue(e)
    ledger.forget({(T, 1)})
    assert ledger.take(0.0) is mine
    assert ledger.take(0.0) is None
