"""Step 3, build: the dbt models (geocode, count, cluster, merge, rank) and the Python they call."""
