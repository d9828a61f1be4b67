"""The report's queries, in the SQL that DuckDB and Athena (Trino) both run.

Every query reads one relation, ``events`` (the Glue table ``events`` on Athena; on DuckDB a
view over the Parquet files, :func:`duckdb_events_view`), and takes ``?`` parameters, which
both engines bind (Athena's ``ExecutionParameters``). What keeps them portable: ``day`` is a
``YYYY-MM-DD`` string (a projected partition on Athena; read as text on DuckDB), months are
``substr(day, 1, 7)``, weeks are ``date_trunc('week', CAST(day AS DATE))`` cast to ``DATE``
(DuckDB answers a timestamp) and back to text, conditional sums are ``SUM(CASE ...)``, casts
are ``CAST``, and nothing engine-specific
(``::``, ``FILTER``, ``QUALIFY``, list functions, ``generate_series``/``sequence``) appears.

A row can be delivered twice (the stream retries a batch after a failure), so every query reads
``unique_events``: one row per ``event_id``, the earliest published.

What each figure means is in docs/analytics.md (The report).
"""

from __future__ import annotations

UNIQUE = """
unique_events AS (
  SELECT * FROM (
    SELECT e.*,
           ROW_NUMBER() OVER (PARTITION BY e.event_id ORDER BY e.published_at) AS copy_no
    FROM events e
    WHERE e.program_id = ? AND e.day <= ?
  ) numbered
  WHERE copy_no = 1
)"""
"""Parameters: program id, last day."""

ORDERS = """
orders AS (
  SELECT member_id, order_id, day, substr(day, 1, 7) AS month
  FROM unique_events
  WHERE detail_type = 'PointsEarned' AND reason = 'order_completed'
)"""
"""An order is a completed order's ``PointsEarned`` (both programs publish one per order)."""

PROGRAMS = """
SELECT DISTINCT program_id
FROM events
WHERE day BETWEEN ? AND ? AND program_id IS NOT NULL
ORDER BY program_id
"""
"""Parameters: from day, to day."""

DAYS = """
SELECT DISTINCT day FROM events WHERE day BETWEEN ? AND ? ORDER BY day
"""
"""The days of the range that have any event (the tier mix's axis). Parameters: from, to."""

TIER_MIX = f"""
WITH {UNIQUE},
changes AS (
  SELECT member_id, tier, occurred_at, event_id, day
  FROM unique_events
  WHERE detail_type = 'MemberTierChanged'
),
days AS (
  SELECT DISTINCT day FROM events WHERE day BETWEEN ? AND ?
),
latest AS (
  SELECT d.day, c.member_id, c.tier,
         ROW_NUMBER() OVER (
           PARTITION BY d.day, c.member_id ORDER BY c.occurred_at DESC, c.event_id DESC
         ) AS rank_no
  FROM days d
  JOIN changes c ON c.day <= d.day
)
SELECT day, tier, COUNT(*) AS members
FROM latest
WHERE rank_no = 1 AND tier IS NOT NULL
GROUP BY day, tier
ORDER BY day, tier
"""
"""Members holding each tier at the end of each day of the range (the last tier change up to
that day). Parameters: program, to, from, to."""

RETENTION = f"""
WITH {UNIQUE}, {ORDERS},
active AS (
  SELECT DISTINCT member_id, month FROM orders
),
firsts AS (
  SELECT member_id, MIN(month) AS cohort FROM active GROUP BY member_id
)
SELECT f.cohort,
       (CAST(substr(a.month, 1, 4) AS INTEGER) * 12 + CAST(substr(a.month, 6, 2) AS INTEGER))
       - (CAST(substr(f.cohort, 1, 4) AS INTEGER) * 12 + CAST(substr(f.cohort, 6, 2) AS INTEGER))
         AS month_offset,
       COUNT(*) AS members
FROM firsts f
JOIN active a ON a.member_id = f.member_id
WHERE f.cohort >= substr(?, 1, 7)
GROUP BY 1, 2
ORDER BY 1, 2
"""
"""Cohorts by the month of the member's first order (first over all the data up to ``to``),
for cohorts starting in the range: members with an order in each month after. Parameters:
program, to, from."""

POINTS_FLOW = f"""
WITH {UNIQUE}
SELECT CAST(CAST(date_trunc('week', CAST(day AS DATE)) AS DATE) AS VARCHAR) AS week,
       SUM(CASE WHEN detail_type = 'PointsEarned' THEN points ELSE 0 END) AS earned,
       SUM(CASE WHEN detail_type = 'CampaignRewarded' THEN points
                WHEN detail_type = 'CampaignRewardReversed' THEN -points ELSE 0 END) AS bonus,
       SUM(CASE WHEN detail_type = 'PointsSpent' THEN points ELSE 0 END) AS spent,
       SUM(CASE WHEN detail_type = 'PointsExpired' THEN points ELSE 0 END) AS expired
FROM unique_events
WHERE day >= ?
  AND detail_type IN ('PointsEarned', 'CampaignRewarded', 'CampaignRewardReversed',
                      'PointsSpent', 'PointsExpired')
GROUP BY 1
ORDER BY 1
"""
"""Points by ISO week (Monday) of the event's day. Parameters: program, to, from."""

PERK_USE = f"""
WITH {UNIQUE}
SELECT COALESCE(perk_id, 'gas_cashback') AS perk,
       SUM(CASE WHEN detail_type IN ('PerkRedeemed', 'CashbackCredited') THEN 1 ELSE 0 END)
         AS uses,
       SUM(CASE WHEN detail_type = 'RedemptionCancelled' THEN 1 ELSE 0 END) AS cancelled,
       COUNT(DISTINCT CASE WHEN detail_type IN ('PerkRedeemed', 'CashbackCredited')
                           THEN member_id END) AS members,
       SUM(CASE WHEN detail_type = 'CashbackCredited' THEN amount ELSE 0 END) AS cashback
FROM unique_events
WHERE day >= ?
  AND detail_type IN ('PerkRedeemed', 'RedemptionCancelled', 'CashbackCredited')
GROUP BY 1
ORDER BY 1
"""
"""Redemptions (confirmed), their cancellations, the members who used each perk, and gas
cashback credits (counted as uses of ``gas_cashback``, with their amount). Parameters:
program, to, from."""

CAMPAIGNS = f"""
WITH {UNIQUE}, {ORDERS},
window_orders AS (
  SELECT member_id, COUNT(*) AS n FROM orders WHERE day >= ? GROUP BY member_id
),
rewarded AS (
  SELECT campaign_id, member_id,
         SUM(CASE WHEN detail_type = 'CampaignRewarded' THEN points ELSE -points END) AS points
  FROM unique_events
  WHERE day >= ? AND detail_type IN ('CampaignRewarded', 'CampaignRewardReversed')
  GROUP BY campaign_id, member_id
),
totals AS (
  SELECT campaign_id, SUM(points) AS bonus_points, COUNT(*) AS rewarded_members
  FROM rewarded GROUP BY campaign_id
),
rewarded_orders AS (
  SELECT r.campaign_id, SUM(COALESCE(o.n, 0)) AS orders
  FROM rewarded r LEFT JOIN window_orders o ON o.member_id = r.member_id
  GROUP BY r.campaign_id
),
others AS (
  SELECT t.campaign_id, COUNT(*) AS members, SUM(o.n) AS orders
  FROM totals t
  CROSS JOIN window_orders o
  LEFT JOIN rewarded r ON r.campaign_id = t.campaign_id AND r.member_id = o.member_id
  WHERE r.member_id IS NULL
  GROUP BY t.campaign_id
)
SELECT t.campaign_id, t.bonus_points, t.rewarded_members, ro.orders AS rewarded_orders,
       COALESCE(ot.members, 0) AS other_members, COALESCE(ot.orders, 0) AS other_orders
FROM totals t
JOIN rewarded_orders ro ON ro.campaign_id = t.campaign_id
LEFT JOIN others ot ON ot.campaign_id = t.campaign_id
ORDER BY t.campaign_id
"""
"""Per campaign rewarded in the range: net bonus points, members rewarded and their orders in
the range, and the same for the program's other ordering members (the baseline of the cost per
extra order, computed in ``infra.report``). Parameters: program, to, from, from."""


def duckdb_events_view(directory: str) -> str:
    """The ``events`` view over ``<directory>/day=*/*.parquet`` (DuckDB only: Athena has the
    Glue table). ``day`` is read as text, as Athena's projected partition is."""
    glob = f"{directory.rstrip('/')}/day=*/*.parquet".replace("'", "''")
    return (
        "CREATE OR REPLACE VIEW events AS SELECT * FROM read_parquet("
        f"'{glob}', hive_partitioning = true, hive_types = {{'day': VARCHAR}})"
    )
