"""Step 1, pull: fetch each input file of an edition into the workspace's landing folder, checked."""
