"""Step 2, load: read the landed files (any supported export format) into the edition's DuckDB raw
tables.
"""
