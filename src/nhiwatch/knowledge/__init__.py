"""Facts about the world that nhiwatch reasons with, kept as data tables with their sources.

Each table is a compact file under ``data/`` generated from a published source (see
``build_data.py``); its header names where the facts came from and when. Nothing here needs the
network at runtime: ``netranges`` (whose network an IP address is in) can be refreshed by the user
with ``nhiwatch ranges update``, ``vendors`` (which SaaS vendor owns an AWS account) ships as is.
"""
