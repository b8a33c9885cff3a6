"""Tokentrail: links AI spend to the pull requests it served."""
