"""Arrays and labels out to the user's tools: pandas, xarray, Parquet, CSV, JSON, text; atomic files.

Knows result arrays and their axis labels, not how they were computed: the
grid's results call down into it.
"""
