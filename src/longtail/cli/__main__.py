"""`python -m longtail.cli`."""

from longtail.cli import app

app()
