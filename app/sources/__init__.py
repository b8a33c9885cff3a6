"""One pure parser per usage format; each turns a source's own payload into canonical records."""
