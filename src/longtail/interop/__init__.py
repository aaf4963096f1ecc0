"""Files longtail writes for other tools: a dataset version as Parquet, CSV or JSONL."""
