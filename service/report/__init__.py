"""The yearly report of a region: its frames and figures in :mod:`.data`, its charts in
:mod:`.charts`, HTML and PDF in :mod:`.render`."""
