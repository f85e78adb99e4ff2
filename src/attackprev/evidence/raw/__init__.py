"""Readers of the raw copies under ``data/raw/``: each turns one published data set into counts.

Every reader checks what it reads and stops with one line naming the file and row on anything
unexpected; IDs go through :func:`attackprev.evidence.ids.resolve`.
"""
