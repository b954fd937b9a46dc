"""The validation report a reviewer reads and signs off.

:func:`render_html` turns a comparison of two runs and the gate's decision into one
self-contained HTML page: no external scripts, styles, fonts or images, a strict
Content-Security-Policy, and every piece of run data escaped.
"""

from harness.report.html import render_html

__all__ = ["render_html"]
