"""Step 5, report: the edition's HTML report and its difference from the previous edition."""
