"""Briefings people can hold: for any area of any geography, a page, a printable A4 HTML and a PDF (data.py gathers,
mapimage.py draws the map server-side, render.py makes HTML and PDF); printable local directories (directory.py);
councillors' areas and their monthly e-mail (councillors.py)."""
