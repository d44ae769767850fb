"""The capacity model's arithmetic (`ledger.entrypoints.capacity`), without any service."""

from __future__ import annotations

from dataclasses import replace

from ledger.entrypoints.capacity import SECONDS_A_YEAR, Measured, Traffic, plan

MEASURED = Measured(
    shard_commands_per_second=10_000.0,
    events_per_command=1.2,
    projection_events_per_second=20_000.0,
    store_bytes_per_event=600.0,
    kafka_bytes_per_message=320.0,
    kafka_bytes_per_event=600.0,
    broker_bytes_per_second=20e6,
)


def test_the_yearly_and_peak_figures_follow_from_the_traffic() -> None:
    traffic = Traffic(learners=1_000_000, messages_per_learner_year=20, peak_factor=6)
    result = plan(traffic, MEASURED)
    assert result.messages_per_year == 20_000_000
    assert result.events_per_year == 24_000_000
    assert result.peak_commands_per_second == 20_000_000 / SECONDS_A_YEAR * 6
    assert result.postgres_bytes_per_year == 24_000_000 * 600
    assert result.kafka_bytes_per_year == (20_000_000 * 320 + 24_000_000 * 600) * 3


def test_shards_cover_the_peak_at_half_the_measured_rate_and_come_in_powers_of_two() -> None:
    # 5,000 commands/s a shard at half its measured rate: 12,000/s at the peak needs 3, so 4.
    peak = 12_000.0
    learners = int(peak / 6 * SECONDS_A_YEAR / 20)
    result = plan(Traffic(learners, 20, 6, years=1, shard_storage_bytes=1e18), MEASURED)
    assert result.shards_for_peak == 3
    assert result.shards == 4
    assert result.partitions % result.shards == 0


def test_stored_years_can_need_more_shards_than_the_peak() -> None:
    traffic = Traffic(150_000_000, 20, 6, years=5, shard_storage_bytes=4e12)
    result = plan(traffic, MEASURED)
    stored = result.events_per_year * 5 * 600
    assert result.shards_for_storage == -(-stored // 4e12)
    assert result.shards >= result.shards_for_storage > result.shards_for_peak
    more = plan(replace(traffic, years=10), MEASURED)
    assert more.shards >= result.shards


def test_at_least_three_brokers_and_a_partition_for_every_projection_process() -> None:
    small = plan(Traffic(1_000, 20, 6), MEASURED)
    assert small.brokers == 3
    slow = replace(MEASURED, projection_events_per_second=1.0)
    busy = plan(Traffic(10_000_000, 20, 6), slow)
    assert busy.partitions >= busy.projection_processes
    assert busy.partitions % busy.shards == 0
