"""Step 6, publish: the published files, their manifest, and verification."""
