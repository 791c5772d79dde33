"""Step 4, gate: Great Expectations checks over the built edition; a failed critical check publishes
nothing.
"""
