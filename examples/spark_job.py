"""Score the example data on Spark: the same rules, as Spark SQL over DataFrames.

Run it locally:

    .venv/bin/python examples/spark_job.py [RULES] [DATA_DIR] [OUT_DIR]

or on a cluster, with the rules file shipped beside it and the data on shared storage:

    spark-submit --master yarn --files rules.lead examples/spark_job.py \\
        rules.lead s3://bucket/leads/ s3://bucket/scores/

DATA_DIR holds events, contacts and accounts as NDJSON (``events.ndjson`` ...) or Parquet
folders (``events.parquet`` ...); OUT_DIR receives ``contacts`` and ``accounts`` as Parquet.
"""

from __future__ import annotations

import sys
from pathlib import Path

import leaddsl
import leaddsl.spark


def read(spark, folder: str, name: str):  # type: ignore[no-untyped-def]
    """A table of the data folder: Parquet when there is one, else NDJSON."""
    parquet = f"{folder.rstrip('/')}/{name}.parquet"
    if not parquet.startswith(("s3:", "gs:", "hdfs:", "abfs")) and not Path(parquet).exists():
        return spark.read.json(f"{folder.rstrip('/')}/{name}.ndjson")
    return spark.read.parquet(parquet)


def main(argv: list[str]) -> int:
    from pyspark.sql import SparkSession

    root = Path(__file__).resolve().parent
    rules_path = argv[1] if len(argv) > 1 else str(root / "rules.lead")
    data = argv[2] if len(argv) > 2 else str(root / "data")
    out = argv[3] if len(argv) > 3 else None
    spark = (SparkSession.builder.appName("leaddsl-scores")
             .config("spark.sql.shuffle.partitions", "8").getOrCreate())
    try:
        rules = leaddsl.load(rules_path)
        contacts, accounts, rejected = leaddsl.spark.score_with_report(
            rules, read(spark, data, "events"), read(spark, data, "contacts"),
            read(spark, data, "accounts"), errors="collect")
        for r in rejected:
            print(f"set aside {r.reason}", file=sys.stderr)
        if out is None:
            contacts.orderBy("total", ascending=False).show(5, truncate=False)
            accounts.orderBy("total", ascending=False).select("id", "total", "labels").show(5)
        else:
            contacts.write.mode("overwrite").parquet(f"{out.rstrip('/')}/contacts")
            accounts.write.mode("overwrite").parquet(f"{out.rstrip('/')}/accounts")
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
